"""Regenerates docs/gallery/*.png and the figure list in docs/gallery.md's table.

    .venv/bin/python docs/gallery/make_gallery.py

Weights: VGG16 with Keras' seeded random initialisation (seed 0), carried to torch with a
weight bundle where torch draws. This machine cannot download ImageNet weights; with them,
deep layers look far more structured, early layers much the same (edges and colours).
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
    viz.feature_grid(feats["block1_conv1"], title=f"{name}: vgg16 block1_conv1 (64 channels)").savefig(HERE / f"{name}-grid.png")
    viz.max_activation(feats["block3_conv3"], title=f"{name}: block3_conv3, max over channels").savefig(HERE / f"{name}-max.png")
    viz.composite(feats["block1_conv1"], channels=3, title=f"{name}: block1_conv1, 3 channels").savefig(HERE / f"{name}-composite.png")
    crop = vgg.prepare(photo, preprocess=None, resize="stretch")[0]  # the 224x224 the model saw
    viz.overlay(crop, feats["block3_conv3"], title=f"{name}: block3_conv3 over the input").savefig(HERE / f"{name}-overlay.png")

viz.filters(vgg, "block1_conv1").savefig(HERE / "filters-block1_conv1.png")
viz.filters(vgg_torch, "block1_conv2").savefig(HERE / "filters-block1_conv2-torch.png")
for i, fig in enumerate(viz.blocks(ls.sample("chelsea"), vgg), start=1):
    fig.savefig(HERE / f"chelsea-block{i}.png")
print("wrote", len(list(HERE.glob("*.png"))), "figures to", HERE)
