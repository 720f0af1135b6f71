"""Writes the seed inputs of the idx, csv, npy and npz targets into corpus/<target>/ and copies
the Keras fixtures into corpus/keras_zip/, corpus/h5/ and (as their members)
corpus/keras_members/. Needs NumPy. The safetensors seeds (weights, state) are written by the
library itself: `cargo test --release --test fuzz_corpus -- --ignored write_seeds`."""
import gzip, io, os, shutil, struct
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
fixtures = os.path.join(here, "..", "tests", "fixtures")
corpus = lambda t: os.path.join(here, "corpus", t)

def put(target, name, data):
    os.makedirs(corpus(target), exist_ok=True)
    with open(os.path.join(corpus(target), name), "wb") as f:
        f.write(data)

for name in os.listdir(fixtures):
    if name.startswith(("G_files_", "E_functional_")) and name.endswith(".keras"):
        shutil.copy(os.path.join(fixtures, name), corpus("keras_zip"))
    elif name.startswith("G_files_") and name.endswith(".h5"):
        shutil.copy(os.path.join(fixtures, name), corpus("h5"))

# IDX: the first byte of an input says whether the rest is gzipped.
def idx(dims, values):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(values)
images = idx([3, 4, 4], [(i * 37) % 256 for i in range(48)])
labels = idx([3], [7, 0, 9])
for n, d in [("images", images), ("labels", labels), ("vector", idx([5], range(5))), ("4d", idx([1, 2, 2, 2], range(8)))]:
    put("idx", n, b"\x00" + d)
    put("idx", n + ".gz", b"\x01" + gzip.compress(d, mtime=0))

# CSV: the first byte says whether the first line is a header.
iris = open(os.path.join(here, "..", "keras-runtime", "src", "datasets", "iris.csv"), "rb").read()
put("csv", "iris", b"\x01" + b"\n".join(iris.split(b"\n")[:12]) + b"\n")
put("csv", "header", b"\x01x,y,label\n1,2.5,0\n-3, 4e1 ,1\n")
put("csv", "plain", b"\x001,2\n3,4\n5e-3,-inf\n")
put("csv", "quoted", b'\x01"a","b"\r\n"1.5","nan"\r\n')

# NPY: as np.save writes them.
def npy(a, version=None):
    buf = io.BytesIO()
    if version is None:
        np.save(buf, a)
    else:
        np.lib.format.write_array(buf, a, version=version)
    return buf.getvalue()
put("npy", "matrix", npy(np.arange(6, dtype=np.float32).reshape(2, 3)))
put("npy", "scalar", npy(np.float32(2.5)))
put("npy", "empty", npy(np.zeros((0, 3), dtype=np.float32)))
put("npy", "fortran", npy(np.asfortranarray(np.arange(6, dtype=np.float32).reshape(3, 2))))
put("npy", "bigendian", npy(np.arange(4, dtype=">f4")))
put("npy", "v2", npy(np.arange(3, dtype=np.float32), version=(2, 0)))
put("npy", "float64", npy(np.arange(3, dtype=np.float64)))

# NPZ: np.savez and np.savez_compressed, every accepted dtype.
def npz(save, **arrays):
    buf = io.BytesIO()
    save(buf, **arrays)
    return buf.getvalue()
arrays = dict(x=np.arange(6, dtype=np.float32).reshape(2, 3), d=np.arange(2.0), i=np.arange(3, dtype=np.int64), u=np.arange(4, dtype=np.uint8))
put("npz", "savez", npz(np.savez, **arrays))
put("npz", "savez_compressed", npz(np.savez_compressed, **arrays))
put("npz", "one", npz(np.savez, y=np.float32(1.0)))

# keras_members: a little-endian u16 length of config.json, config.json, model.weights.h5.
import struct, zipfile
for name in os.listdir(fixtures):
    if name.startswith(("G_files_", "E_functional_")) and name.endswith(".keras"):
        z = zipfile.ZipFile(os.path.join(fixtures, name))
        config, weights = z.read("config.json"), z.read("model.weights.h5")
        put("keras_members", name, struct.pack("<H", len(config)) + config + weights)
