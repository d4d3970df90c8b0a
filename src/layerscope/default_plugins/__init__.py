"""The built-in backends, as plugins like any third-party one (see ``layerscope.plugins``).

Named after llm's ``default_plugins``: ``layerscope.backends()`` is the public function
that lists backends, so this package cannot be called ``backends``.

``torch/`` and ``keras/`` are mirror images with the same modules:

- ``__init__.py``  the plugin: a ``layerscope_register_backends`` hook (imports no framework)
- ``backend.py``   the :class:`~layerscope.backend.Backend` class (imports the framework lazily)
- ``build.py``     model zoo, building models, weights (imagenet / random / file)
- ``capture.py``   running a batch and capturing the requested layers
- ``layers.py``    describing every layer: name, kind, NHWC shape, parameters
"""
