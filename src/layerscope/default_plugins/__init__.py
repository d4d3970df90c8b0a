"""The built-in backends, as plugins like any third-party one (see ``layerscope.plugins``).

Named after llm's ``default_plugins``: ``layerscope.backends()`` is the public function
that lists backends, so this package cannot be called ``backends``.

``torch/`` and ``keras/`` are mirror images with the same modules:

- ``__init__.py``  the plugin: a ``layerscope_register_backends`` hook (imports no framework)
- ``backend.py``   the backend class: a few lines on the public
  :class:`layerscope.framework.FrameworkBackend` (name, requirements, guard, ``owns``),
  which imports the modules below lazily and delegates the
  :class:`~layerscope.backend.Backend` contract to them
- ``build.py``     model zoo, building models, weights (imagenet / random / file / bundle)
- ``files.py``     a user's own weights file loaded into its model (torch: state dicts,
  checkpoints, wrapper prefixes, no head; Keras: ``.weights.h5`` / ``.h5`` / ``.keras``)
- ``capture.py``   running a batch and capturing the requested layers
- ``layers.py``    describing every layer: name, kind, NHWC shape, parameters
- ``port.py``      weight bundles to and from the framework, kernels in HWIO order
- ``names/``       this backend's native names of the catalogue's canonical points, its
  recipe and default variant (``<arch>.json``, read by
  :func:`layerscope.catalog.names.load_names`)

Keras also has ``variants.py``: torchvision's ResNet50 v1.5 built from Keras layers.
"""
