"""Regenerates the outputs quoted in docs/why-outputs-differ.md.

    .venv/bin/python docs/examples/why_outputs_differ.py > /tmp/why.txt
"""

import numpy as np
from PIL import Image

import layerscope as ls

photo = ls.sample("chelsea")

print("## 1. Same weights, same tensor: the frameworks agree")
report = ls.compare(photo, "vgg16", backends=("keras", "torch"), weights="random", seed=0)
print(report.render(limit=6))

print("\n## 2. Each framework's own preprocessing from the same file")
report = ls.compare(photo, "vgg16", backends=("keras", "torch"), pipeline="native",
                    layers=["block1_conv1", "block3_conv3", "block5_pool"])
print(report.render())

print("\n## 3. ResNet50: Keras weights in torchvision's own resnet50")
report = ls.compare(photo, "resnet50", backends=("keras", "torch"), variants={"torch": "v1.5"})
print(report.render(only_failed=True, limit=5))
report.to_html("docs/examples/resnet50-v1-vs-v1.5.html")

print("\n## 4. How far does 0.1% noise move each layer?")
rgb = np.asarray(Image.open(photo).convert("RGB"), dtype=np.float32)
noisy = np.clip(rgb + np.random.default_rng(0).normal(0, 0.001 * 255, rgb.shape), 0, 255).astype(np.float32)
report = ls.sensitivity(rgb, noisy, "vgg16", backend="torch",
                        layers=["block1_conv1", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3", "fc2", "predictions"])
print(report.render())

print("\n## 5. When only the softmax disagrees: torchvision's own random ResNet50 in Keras")
report = ls.compare(photo, "resnet50", backends=("torch", "keras"), weights="random", seed=0,
                    variants={"torch": "v1"}, layers=["conv5_block3_out", "avg_pool", "predictions"])
print(report.render())
