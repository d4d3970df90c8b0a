"""Regenerates docs/gallery/*.png (the figures docs/gallery.md shows), with viz's defaults.

    .venv/bin/python docs/gallery/make_gallery.py

Weights: VGG16 with Keras' seeded random initialisation (seed 0), carried to torch with a
weight bundle where torch draws. This machine cannot download ImageNet weights; with them,
deep layers look far more structured, early layers much the same (edges and colours).
Titles are viz's defaults (model, layer, backend, weights); the photo is named in the file.
"""

from pathlib import Path

import layerscope as ls
from layerscope import viz

HERE = Path(__file__).parent
vgg = ls.load("vgg16", backend="keras", weights="random", seed=0)
vgg_torch = ls.load("vgg16", backend="torch", weights=vgg.export_bundle())

for name in ("chelsea", "coffee", "astronaut"):
    photo = ls.sample(name)
    feats = vgg.extract(photo, ["block1_conv1", "block3_conv3", "block5_conv3"])
    viz.feature_grid(feats, layer="block1_conv1").savefig(HERE / f"{name}-grid.png")
    viz.max_activation(feats, layer="block3_conv3", colorbar=True).savefig(HERE / f"{name}-max.png")
    viz.composite(feats, layer="block1_conv1", channels=3).savefig(HERE / f"{name}-composite.png")
    crop = vgg.prepare(photo, preprocess=None, resize="stretch")[0]  # the 224x224 the model saw
    viz.overlay(crop, feats, layer="block3_conv3", colorbar=True).savefig(HERE / f"{name}-overlay.png")
    if name == "chelsea":
        viz.feature_grid(feats, layer="block5_conv3", channels=16, scale="shared", colorbar=True).savefig(
            HERE / "chelsea-grid-shared.png"
        )

viz.filters(vgg, "block1_conv1", n=64).savefig(HERE / "filters-block1_conv1.png")
viz.filters(vgg_torch, "block1_conv2", n=16).savefig(HERE / "filters-block1_conv2-torch.png")
viz.blocks_figure(ls.sample("chelsea"), vgg).savefig(HERE / "chelsea-blocks.png")
for i, fig in enumerate(viz.blocks(ls.sample("chelsea"), vgg), start=1):
    fig.savefig(HERE / f"chelsea-block{i}.png")
print("wrote", len(list(HERE.glob("*.png"))), "figures to", HERE)
