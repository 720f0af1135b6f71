"""The rows of `cargo run --release --example bench -- --applications` in Keras (JAX backend) or
PyTorch (torchvision's models), for a side-by-side run on the same machine:

    python scripts/bench_applications.py keras   # KERAS_BACKEND=jax is set below
    python scripts/bench_applications.py torch

ResNet50 inference at batch 1 (ms per image) and 32 (images/s), one ResNet50 SGD step at batch 32
(sparse categorical cross-entropy), MobileNetV2 at batch 1 (ms). Random weights, deterministic
images, medians after a warm-up, 2 threads (the machine's cores).
"""
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np


def timed(runs, f):
    f()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        f()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def images(n, channels_first=False):
    i, y, x, c = np.meshgrid(np.arange(n), np.arange(224), np.arange(224), np.arange(3), indexing="ij")
    a = (((i * 7 + y * 3 + x * 5 + c) % 255) / 127.5 - 1.0).astype(np.float32)
    return a.transpose(0, 3, 1, 2).copy() if channels_first else a


def keras_rows():
    import keras
    x1, x32 = images(1), images(32)
    y = (np.arange(32) * 31 % 1000).astype(np.int32)
    resnet = keras.applications.ResNet50(weights=None)
    yield "A-resnet50-b1", timed(15, lambda: resnet.predict_on_batch(x1)) * 1e3, "ms"
    yield "A-resnet50-b32", 32 / timed(5, lambda: resnet.predict_on_batch(x32)), "images/s"
    resnet.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    yield "A-resnet50-train32", timed(5, lambda: resnet.train_on_batch(x32, y)), "s/step"
    mobilenet = keras.applications.MobileNetV2(weights=None)
    yield "A-mobilenetv2-b1", timed(25, lambda: mobilenet.predict_on_batch(x1)) * 1e3, "ms"


def torch_rows():
    import torch
    import torchvision
    torch.set_num_threads(2)
    x1, x32 = torch.from_numpy(images(1, True)), torch.from_numpy(images(32, True))
    y = torch.from_numpy((np.arange(32) * 31 % 1000).astype(np.int64))
    resnet = torchvision.models.resnet50().eval()
    with torch.no_grad():
        yield "A-resnet50-b1", timed(15, lambda: resnet(x1)) * 1e3, "ms"
        yield "A-resnet50-b32", 32 / timed(5, lambda: resnet(x32)), "images/s"
    resnet.train()
    opt = torch.optim.SGD(resnet.parameters(), lr=0.01)
    loss = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss(resnet(x32), y).backward()
        opt.step()

    yield "A-resnet50-train32", timed(5, step), "s/step"
    mobilenet = torchvision.models.mobilenet_v2().eval()
    with torch.no_grad():
        yield "A-mobilenetv2-b1", timed(25, lambda: mobilenet(x1)) * 1e3, "ms"


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "keras"
    for row, value, unit in (keras_rows() if which == "keras" else torch_rows()):
        print(f"| {row} | {value:.3f} {unit} |", flush=True)
