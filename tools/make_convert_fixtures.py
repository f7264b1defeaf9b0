#!/usr/bin/env python3
"""tools/make_convert_fixtures.py - the inputs of tests/check_convert.c (simmimctl convert).

Writes tests/fixtures/convert/:
  *.pth          files made by torch.save (PyTorch 1.13): a plain state_dict, the official
                 microsoft/SimMIM layout carrying the weights of tests/golden/simmim_vit_shared_rpb
                 (with an AdamW state, a stand-in yacs CfgNode...), fp16/bf16 tensors, strided
                 views and shared storages, the legacy (pre-1.6) format, a deflated re-pack;
  ringmo_*.ckpt  MindSpore checkpoints built byte by byte here (MindSpore cannot be installed):
                 the golden SimMIM ViT and Swin weights and part of the golden ViT classifier under
                 RingMo-Framework's names and layouts (the inverse of core/io/ringmo_names.c), with
                 optimizer state, counters, a tensor split in two slices and a CRC trailer;
  expected.safetensors  the tensors each non-golden fixture must convert to, "<file>/<name>",
                 written by hand (json + struct) so no converter code is involved;
  ../../../fuzz/corpus/convert/  seeds of fuzz/fuzz_convert.c (first byte: 0 the file, 1 a
                 data.pkl wrapped in a zip with four 64-byte storages, 2 a legacy stream's object
                 pickle, key list and storages);
  bad/           hostile and broken inputs that must be refused (check_convert.c lists the
                 message each must produce). bad/evil_*.pth run `touch simmim_convert_pwned`
                 through os.system / eval when unpickled by Python: the script checks that
                 pickle.loads really does that (in a temporary directory), so the test that the
                 converter does not is meaningful.

Rerun from the top of the source tree with a Python that has torch (Debian: python3-torch):
    /usr/bin/python3 tools/make_convert_fixtures.py
Tensor values are seeded and zip entries dated 1980-01-01, so a rerun rewrites the same bytes,
except legacy.pth (its storage keys are object ids) and bad/torchscript.pt.
"""
import argparse
import collections
import io
import json
import os
import pickle
import struct
import sys
import tarfile
import tempfile
import types
import zipfile
import zlib

import torch

OUT = os.path.join("tests", "fixtures", "convert")
BAD = os.path.join(OUT, "bad")
GOLDEN = os.path.join("tests", "golden")
MARKER = "simmim_convert_pwned"

# ---- safetensors by hand ------------------------------------------------------------------------

ST_DTYPES = {"F32": (torch.float32, 4), "I64": (torch.int64, 8), "F64": (torch.float64, 8),
             "BOOL": (torch.bool, 1)}


def st_read(path):
    """{name: tensor} of a safetensors file (tensor entries only)."""
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])
    out = collections.OrderedDict()
    meta = head.pop("__metadata__", {})
    for name, e in head.items():
        dt, _ = ST_DTYPES[e["dtype"]]
        lo, hi = e["data_offsets"]
        raw = bytearray(b[8 + n + lo:8 + n + hi])
        t = torch.frombuffer(raw, dtype=dt) if raw else torch.zeros(0, dtype=dt)
        out[name] = t.reshape(e["shape"]).clone()
    return out, meta


def st_write(path, tensors):
    """Writes {name: tensor} (float32, int64, bool) as safetensors."""
    names = sorted(tensors)
    header, blobs, off = {}, [], 0
    for name in names:
        t = tensors[name].contiguous()
        dt = {torch.float32: "F32", torch.int64: "I64", torch.bool: "BOOL"}[t.dtype]
        raw = t.numpy().tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def golden_weights(name):
    t, meta = st_read(os.path.join(GOLDEN, name + ".safetensors"))
    order = json.loads(meta["parameters"]) + json.loads(meta["buffers"])
    return collections.OrderedDict((k, t[k]) for k in order)


def expect(expected, stem, sd):
    """The converted form of a state dict: floats as float32, integers as int64."""
    for k, v in sd.items():
        v = v.detach()
        if v.dtype == torch.bool:
            e = v.clone()
        elif v.is_floating_point():
            e = v.float()
        else:
            e = v.long()
        expected[stem + "/" + k] = e.contiguous()


# ---- torch.save fixtures ------------------------------------------------------------------------

def install_fake_yacs():
    """A stand-in for yacs.config.CfgNode (a dict subclass with attributes), pickled by name."""
    yacs = types.ModuleType("yacs")
    config = types.ModuleType("yacs.config")

    class CfgNode(dict):
        def __init__(self, init=None):
            super().__init__(init or {})
            self.__dict__["__immutable__"] = False
            self.__dict__["__new_allowed__"] = False

    CfgNode.__module__ = "yacs.config"
    CfgNode.__qualname__ = "CfgNode"
    config.CfgNode = CfgNode
    yacs.config = config
    sys.modules["yacs"] = yacs
    sys.modules["yacs.config"] = config
    return CfgNode


def plain_sd():
    g = torch.Generator().manual_seed(1)
    sd = collections.OrderedDict()
    sd["conv.weight"] = torch.randn(4, 3, 2, 2, generator=g)
    sd["conv.bias"] = torch.randn(4, generator=g)
    sd["ln.weight"] = torch.nn.Parameter(torch.randn(5, generator=g))
    sd["attn.relative_position_index"] = torch.arange(9).reshape(3, 3) * 7 - 20
    sd["scalar"] = torch.tensor(2.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["i32"] = torch.tensor([-2**31, -1, 0, 1, 2**31 - 1], dtype=torch.int32)
    sd["i16"] = torch.tensor([-300, 300], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, 127], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 200, 255], dtype=torch.uint8)
    sd["flag"] = torch.tensor([True, False, True])
    sd["f64"] = torch.tensor([1.0 / 3.0, -1e300, 1e-300], dtype=torch.float64)
    sd["i64_big"] = torch.tensor([2**62, -2**62])
    return sd


def half_sd():
    g = torch.Generator().manual_seed(2)
    sd = collections.OrderedDict()
    h = torch.randn(5, 3, generator=g).half()
    sd["h"] = h
    sd["h_t"] = h.t()  # a transposed view of the same storage
    sd["special"] = torch.tensor([float("inf"), float("-inf"), -0.0, 65504.0, 6e-8, -2e-7,
                                  0.1], dtype=torch.float16)
    sd["b"] = (torch.randn(4, 2, generator=g) * 1000).bfloat16()
    sd["b_special"] = torch.tensor([float("inf"), -0.0, 3e38, 1e-40], dtype=torch.bfloat16)
    return sd


def views_sd():
    base = torch.arange(48, dtype=torch.float32).reshape(6, 8) * 0.5 - 3
    idx = torch.arange(12).reshape(3, 4)
    sd = collections.OrderedDict()
    sd["base"] = base
    sd["t"] = base.t()
    sd["row"] = base[3]
    sd["col"] = base[:, 5]
    sd["step"] = base[1::2, ::3]
    sd["narrow"] = base[2:4, 1:7]
    sd["scalar_view"] = base[2, 3]
    sd["expand"] = torch.arange(3, dtype=torch.float32).reshape(3, 1).expand(3, 4)
    sd["idx_t"] = idx.t()
    sd["idx_tail"] = idx.reshape(-1)[5:]
    sd["permuted"] = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4).permute(2, 0, 1)
    return sd


def legacy_sd():
    a = torch.arange(6, dtype=torch.float32).reshape(2, 3) - 2.5
    sd = collections.OrderedDict()
    sd["a"] = a
    sd["a_t"] = a.t()
    sd["a_row"] = a[1]
    sd["h"] = torch.tensor([1.5, -2.0, 65504.0, 0.25], dtype=torch.float16)
    sd["i"] = torch.tensor([[1, -2], [3, 2**40]])
    return sd


def official_layout(CfgNode):
    """microsoft/SimMIM utils.save_checkpoint's dict around the golden ViT weights."""
    model = golden_weights("simmim_vit_shared_rpb")
    torch.manual_seed(3)
    params = [torch.nn.Parameter(model["encoder.norm.weight"].clone()),
              torch.nn.Parameter(model["encoder.norm.bias"].clone())]
    opt = torch.optim.AdamW(params, lr=1e-3)
    (params[0].sum() * 2 + params[1].square().sum()).backward()
    opt.step()
    cfg = CfgNode({"MODEL": CfgNode({"TYPE": "vit", "NAME": "simmim_pretrain"}),
                   "TRAIN": CfgNode({"BASE_LR": 8e-4, "EPOCHS": 800}), "AMP_OPT_LEVEL": "O1"})
    state = {"model": model, "optimizer": opt.state_dict(),
             "lr_scheduler": {"t_initial": 100, "decay_rate": 0.1, "base_values": [8e-4]},
             "max_accuracy": 0.0, "epoch": 99, "config": cfg,
             "amp": {"loss_scaler0": {"loss_scale": 65536.0, "unskipped": 0}}}
    return state


def zinfo(name, method):
    """A zip entry with a fixed date, so the files do not change from run to run."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = method
    return info


def repack_deflated(src, dst):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(zinfo(info.filename, zipfile.ZIP_DEFLATED), zin.read(info.filename))


def repack_zip64(src, dst):
    """The entries of src in a zip64 archive written by hand: every size and offset in zip64
    extra fields, a zip64 end record and locator (what archives over 4 GiB have)."""
    with zipfile.ZipFile(src) as z:
        entries = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    out, cd = bytearray(), bytearray()
    for name, data in entries:
        off, crc, nb = len(out), zlib.crc32(data), name.encode()
        x = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        out += struct.pack("<IHHHHHIIIHH", 0x04034b50, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF,
                           0xFFFFFFFF, len(nb), len(x)) + nb + x + data
        x = struct.pack("<HHQQQ", 1, 24, len(data), len(data), off)
        cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 45, 45, 0, 0, 0, 0x21, crc,
                          0xFFFFFFFF, 0xFFFFFFFF, len(nb), len(x), 0, 0, 0, 0, 0xFFFFFFFF) + nb + x
    cd_off = len(out)
    out += cd
    end64 = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064b50, 44, 45, 45, 0, 0, len(entries), len(entries),
                       len(cd), cd_off)
    out += struct.pack("<IIQI", 0x07064b50, 0, end64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    with open(dst, "wb") as f:
        f.write(out)


# ---- MindSpore .ckpt by hand --------------------------------------------------------------------
# checkpoint.proto: Checkpoint{ repeated Value value = 1; } Value{ string tag = 1;
# TensorProto tensor = 2; } TensorProto{ repeated int64 dims = 1; string tensor_type = 2;
# bytes tensor_content = 3; } -- MindSpore appends one serialized Checkpoint per tensor (slice).

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb_len(field, payload):
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def ms_value(tag, dims, ttype, content):
    tensor = b"".join(varint(1 << 3 | 0) + varint(d) for d in dims)
    tensor += pb_len(2, ttype.encode()) + pb_len(3, content)
    return pb_len(1, pb_len(1, tag.encode()) + pb_len(2, tensor))


MS_TYPES = {torch.float32: "Float32", torch.float16: "Float16", torch.int32: "Int32",
            torch.int64: "Int64"}


def ms_tensor(tag, t, slices=1):
    t = t.contiguous()
    raw = t.numpy().tobytes()
    dims = list(t.shape)
    step = (len(raw) + slices - 1) // slices
    return b"".join(ms_value(tag, dims, MS_TYPES[t.dtype], raw[i:i + step])
                    for i in range(0, max(len(raw), 1), max(step, 1)))


def dcr_from_pixelshuffle(t, r, c=3):
    """decoder rows in MindSpore DepthToSpace order: row (i*r+j)*c + ch <- c*r*r + i*r + j."""
    out = torch.empty_like(t)
    for ch in range(c):
        for i in range(r):
            for j in range(r):
                out[(i * r + j) * c + ch] = t[ch * r * r + i * r + j]
    return out


def ringmo_vit_block(prefix_in, prefix_out, w, g):
    """Official ViT block tensors -> RingMo names (transposes, q/k/v split, a k bias)."""
    out = []
    C = w[prefix_in + "attn.qkv.weight"].shape[1]
    q, k, v = w[prefix_in + "attn.qkv.weight"].split(C)
    blk = prefix_out
    out += [(blk + "gamma_1", w[prefix_in + "gamma_1"]), (blk + "gamma_2", w[prefix_in + "gamma_2"])]
    for n in ("1", "2"):
        out += [(blk + "layernorm%s.gamma" % n, w[prefix_in + "norm%s.weight" % n]),
                (blk + "layernorm%s.beta" % n, w[prefix_in + "norm%s.bias" % n])]
    out += [(blk + "attention.dense1.weight", q), (blk + "attention.dense2.weight", k),
            (blk + "attention.dense3.weight", v),
            (blk + "attention.dense1.bias", w[prefix_in + "attn.q_bias"]),
            (blk + "attention.dense2.bias", torch.randn(C, generator=g)),
            (blk + "attention.dense3.bias", w[prefix_in + "attn.v_bias"]),
            (blk + "attention.projection.weight", w[prefix_in + "attn.proj.weight"].t()),
            (blk + "attention.projection.bias", w[prefix_in + "attn.proj.bias"]),
            (blk + "output.mapping.weight", w[prefix_in + "mlp.fc1.weight"].t()),
            (blk + "output.mapping.bias", w[prefix_in + "mlp.fc1.bias"]),
            (blk + "output.projection.weight", w[prefix_in + "mlp.fc2.weight"].t()),
            (blk + "output.projection.bias", w[prefix_in + "mlp.fc2.bias"])]
    if prefix_in + "attn.relative_position_bias_table" in w:
        out.append((blk + "attention.relative_position_bias.relative_position_bias_table",
                    w[prefix_in + "attn.relative_position_bias_table"]))
    return out


def ms_training_state(names_and_tensors, g):
    """adam_m/adam_v for two parameters and the counters RingMo saves."""
    out = []
    for name, t in names_and_tensors[:2]:
        out.append(("adam_m." + name, torch.randn(t.shape, generator=g)))
        out.append(("adam_v." + name, torch.rand(t.shape, generator=g)))
    out += [("global_step", torch.tensor([976], dtype=torch.int32)),
            ("epoch_num", torch.tensor([1], dtype=torch.int32)),
            ("step_num", torch.tensor([976], dtype=torch.int32)),
            ("learning_rate", torch.tensor([1e-4]))]
    return out


def ringmo_simmim_vit():
    w = golden_weights("simmim_vit_shared_rpb")
    g = torch.Generator().manual_seed(4)
    r = 4  # encoder_stride
    out = [("encoder.cls_tokens", w["encoder.cls_token"]),
           ("encoder.mask_token", w["encoder.mask_token"]),
           ("encoder.patch_embed.projection.weight", w["encoder.patch_embed.proj.weight"]),
           ("encoder.patch_embed.projection.bias", w["encoder.patch_embed.proj.bias"]),
           ("encoder.rel_pos_bias.relative_position_bias_table",
            w["encoder.rel_pos_bias.relative_position_bias_table"]),
           ("encoder.rel_pos_bias.relative_position_index",
            w["encoder.rel_pos_bias.relative_position_index"].int())]
    for b in range(2):
        out += ringmo_vit_block("encoder.blocks.%d." % b, "encoder.encoder.blocks.%d." % b, w, g)
    out += [("encoder.norm.gamma", w["encoder.norm.weight"]),
            ("encoder.norm.beta", w["encoder.norm.bias"]),
            ("decoder.weight", dcr_from_pixelshuffle(w["decoder.0.weight"], r)),
            ("decoder.bias", dcr_from_pixelshuffle(w["decoder.0.bias"], r))]
    body = b"".join(ms_tensor(n, t, slices=2 if n.endswith("output.mapping.weight") else 1)
                    for n, t in out)
    body += b"".join(ms_tensor(n, t) for n, t in ms_training_state(out[6:], g))
    body += ms_value("note", [], "str", "pretrain".encode("utf-32-le"))
    body += b"crc_num" + (zlib.crc32(body)).to_bytes(10, "big")
    return body


def ringmo_simmim_swin():
    w = golden_weights("simmim_swin")
    g = torch.Generator().manual_seed(5)
    out = []
    for k, t in w.items():
        n = k
        if k.endswith("attn_mask"):  # same name in both; left out to keep the file small
            continue
        if k == "decoder.0.weight" or k == "decoder.0.bias":
            out.append((k.replace("decoder.0.", "decoder."), dcr_from_pixelshuffle(t, 4)))
            continue
        if k.endswith("attn.qkv.weight") or k.endswith("attn.qkv.bias"):
            C = t.shape[0] // 3
            for part, piece in zip("qkv", t.split(C)):
                out.append((k.replace("attn.qkv.", "attn.%s." % part), piece))
            continue
        if "relative_position" in k:
            n = k.replace("attn.", "attn.relative_position_bias.")
            t = t.int() if t.dtype == torch.int64 else t
        elif ".mlp.fc" in k:
            n = k.replace("mlp.fc1.", "mlp.mapping.").replace("mlp.fc2.", "mlp.projection.")
            t = t.t() if t.dim() == 2 else t
        elif "patch_embed.proj." in k:
            n = k.replace("patch_embed.proj.", "patch_embed.projection.")
        if n.endswith(("norm.weight", "norm1.weight", "norm2.weight")):
            n = n[:-len("weight")] + "gamma"
        elif n.endswith(("norm.bias", "norm1.bias", "norm2.bias")):
            n = n[:-len("bias")] + "beta"
        out.append((n, t))
    body = b"".join(ms_tensor(n, t) for n, t in out)
    body += b"".join(ms_tensor(n, t) for n, t in ms_training_state(out[3:], g))
    return body


def ringmo_cls_vit():
    """Part of the golden ViT classifier (block 0 without its MLP, no index buffers) as
    FinetuneVit names."""
    w = golden_weights("cls_vit_meanpool")
    g = torch.Generator().manual_seed(6)
    out = [("encoder.cls_tokens", w["cls_token"]),
           ("encoder.patch_embed.projection.weight", w["patch_embed.proj.weight"]),
           ("encoder.patch_embed.projection.bias", w["patch_embed.proj.bias"])]
    out += [(n, t) for n, t in ringmo_vit_block("blocks.0.", "encoder.encoder.blocks.0.", w, g)
            if ".output." not in n]  # the MLP is left out to keep the file small
    out += [("encoder.fc_norm.gamma", w["fc_norm.weight"]),
            ("encoder.fc_norm.beta", w["fc_norm.bias"]),
            ("head.weight", w["head.weight"]), ("head.bias", w["head.bias"])]
    return b"".join(ms_tensor(n, t) for n, t in out)


# ---- hostile and broken files -------------------------------------------------------------------

def zip_with(path, entries, method=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries:
            z.writestr(zinfo(name, method), data)


def pickle_tensor(key, numel, size, stride, offset=0, stype="FloatStorage"):
    """data.pkl of {'w': tensor} with a hand-made tensor record (protocol 2)."""
    def tup(xs):
        return b"(" + b"".join(b"\x8a\x08" + struct.pack("<q", x) for x in xs) + b"t"
    return (b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n("
            b"(X\x07\x00\x00\x00storagectorch\n" + stype.encode() + b"\n"
            b"X" + struct.pack("<I", len(key)) + key.encode() + b"X\x03\x00\x00\x00cpu"
            b"\x8a\x08" + struct.pack("<q", numel) + b"tQ" +
            b"\x8a\x08" + struct.pack("<q", offset) + tup(size) + tup(stride) +
            b"\x89ccollections\nOrderedDict\n)RtRs.")


def check_hostile(pkl):
    """pickle.loads(pkl) must create MARKER: proves the fixture would run code."""
    with tempfile.TemporaryDirectory() as d:
        cwd = os.getcwd()
        os.chdir(d)
        try:
            try:
                pickle.loads(pkl)
            except Exception:
                pass
            ok = os.path.exists(MARKER)
        finally:
            os.chdir(cwd)
    if not ok:
        sys.exit("hostile fixture does not run its command under pickle.loads")


def write_bad(small_pth, data_pkl, small_ckpt):
    cmd = ("touch " + MARKER).encode()
    evil = {
        "evil_system.pth": b"\x80\x02cos\nsystem\nq\x00X" + struct.pack("<I", len(cmd)) + cmd +
                           b"\x85R.",
        "evil_eval.pth": b"\x80\x02}X\x01\x00\x00\x00wc__builtin__\neval\nX" +
                         struct.pack("<I", len(b"__import__('os').system('" + cmd + b"')")) +
                         b"__import__('os').system('" + cmd + b"')\x85Rs.",
        "evil_stack_global.pth": b"\x80\x04\x8c\x05posix\x8c\x06system\x93\x8c" +
                                 bytes([len(cmd)]) + cmd + b"\x85R.",
    }
    for name, pkl in evil.items():
        check_hostile(pkl)
        zip_with(os.path.join(BAD, name), [("archive/data.pkl", pkl), ("archive/version", "3\n")])
    four = struct.pack("<4f", 1, 2, 3, 4)
    cases = {
        "size_overflow.pth": pickle_tensor("0", 4, [2**40, 2**40], [1, 1]),
        "stride_overflow.pth": pickle_tensor("0", 4, [3, 3], [2**62, 2**62]),
        "storage_short.pth": pickle_tensor("0", 4, [100], [1]),
        "offset_past_end.pth": pickle_tensor("0", 4, [2], [1], offset=3),
        "record_bytes.pth": pickle_tensor("0", 8, [8], [1]),
        "missing_storage.pth": pickle_tensor("7", 4, [4], [1]),
        "complex_storage.pth": pickle_tensor("0", 2, [2], [1], stype="ComplexFloatStorage"),
        "deep_lists.pth": b"\x80\x02" + b"]" * 200 + b"a" * 199 + b".",
        "deep_tuples.pth": b"\x80\x02)" + b"\x85" * 200 + b".",
        "memo_unset.pth": b"\x80\x02}h\x05s.",
        "memo_far.pth": b"\x80\x02}r\xff\xff\xff\xff.",
        "unknown_opcode.pth": b"\x80\x02}\xff.",
        "truncated_pickle.pth": data_pkl[:len(data_pkl) // 2],
        "stack_underflow.pth": b"\x80\x02R.",
    }
    for name, pkl in cases.items():
        zip_with(os.path.join(BAD, name), [("archive/data.pkl", pkl), ("archive/data/0", four)])
    zip_with(os.path.join(BAD, "bzip2.pth"), [("archive/data.pkl", data_pkl)], zipfile.ZIP_BZIP2)
    zip_with(os.path.join(BAD, "no_data_pkl.pth"), [("archive/readme.txt", "hello\n")])
    with open(small_pth, "rb") as f:
        whole = f.read()
    with open(os.path.join(BAD, "truncated_zip.pth"), "wb") as f:
        f.write(whole[:len(whole) * 6 // 10])
    bad_crc = bytearray(whole)
    with zipfile.ZipFile(small_pth) as z:
        info = z.getinfo([n for n in z.namelist() if n.endswith("data/0")][0])
    lh = info.header_offset  # the local header's own name and extra lengths
    data_at = lh + 30 + struct.unpack("<H", whole[lh + 26:lh + 28])[0] + \
        struct.unpack("<H", whole[lh + 28:lh + 30])[0]
    bad_crc[data_at + 1] ^= 0x40
    with open(os.path.join(BAD, "bad_crc.pth"), "wb") as f:
        f.write(bad_crc)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"not really"
        ti = tarfile.TarInfo("pickle")
        ti.size = len(data)
        tar.addfile(ti, io.BytesIO(data))
    with open(os.path.join(BAD, "legacy_tar.pth"), "wb") as f:
        f.write(buf.getvalue()[:1024])  # the header block is enough to recognise a tar
    with open(os.path.join(BAD, "plain_pickle.pkl"), "wb") as f:
        pickle.dump({"w": [1.0, 2.0]}, f, protocol=2)
    open(os.path.join(BAD, "empty.pth"), "wb").close()
    torch.save([torch.ones(2)], os.path.join(BAD, "no_state_dict.pth"))
    torch.save(torch.nn.Linear(2, 2), os.path.join(BAD, "whole_module.pth"))
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), os.path.join(BAD, "torchscript.pt"))
    # MindSpore: truncated, a content length that does not match the dims, a wrong CRC
    with open(os.path.join(BAD, "ms_truncated.ckpt"), "wb") as f:
        f.write(small_ckpt[:len(small_ckpt) - 5])
    with open(os.path.join(BAD, "ms_bad_length.ckpt"), "wb") as f:
        f.write(ms_value("encoder.norm.gamma", [4], "Float32", b"\0" * 12))
    with open(os.path.join(BAD, "ms_bad_crc.ckpt"), "wb") as f:
        f.write(small_ckpt + b"crc_num" + (zlib.crc32(small_ckpt) ^ 1).to_bytes(10, "big"))
    with open(os.path.join(BAD, "ms_deep_dims.ckpt"), "wb") as f:
        f.write(ms_value("w", [1] * 9, "Float32", b"\0" * 4))
    with open(os.path.join(BAD, "ms_no_type.ckpt"), "wb") as f:  # found by fuzz_convert
        f.write(pb_len(1, pb_len(1, b"w") + pb_len(2, varint(1 << 3) + varint(1) +
                                                   pb_len(3, b"\0" * 4))))


FUZZ = os.path.join("fuzz", "corpus", "convert")


def write_fuzz_seeds(CfgNode):
    os.makedirs(FUZZ, exist_ok=True)

    def seed(name, data):
        with open(os.path.join(FUZZ, name), "wb") as f:
            f.write(data)

    for stem in ("plain_sd.pth", "legacy.pth", "ms_small.ckpt", "views.pth"):
        with open(os.path.join(OUT, stem), "rb") as f:
            seed("raw_" + stem.replace(".", "_"), b"\0" + f.read())
    # RingMo names of every kind, tiny
    g = torch.Generator().manual_seed(8)
    pre = "encoder.encoder.blocks.0."
    tiny = [(pre + "layernorm1.gamma", torch.randn(2, generator=g)),
            (pre + "attention.dense1.weight", torch.randn(2, 2, generator=g)),
            (pre + "attention.dense2.weight", torch.randn(2, 2, generator=g)),
            (pre + "attention.dense3.weight", torch.randn(2, 2, generator=g)),
            (pre + "attention.dense2.bias", torch.randn(2, generator=g)),
            (pre + "attention.projection.weight", torch.randn(2, 2, generator=g)),
            (pre + "output.mapping.weight", torch.randn(2, 8, generator=g)),
            ("encoder.layers.0.blocks.0.attn.q.weight", torch.randn(2, 2, generator=g)),
            ("encoder.layers.0.blocks.0.attn.k.weight", torch.randn(2, 2, generator=g)),
            ("encoder.layers.0.blocks.0.attn.v.weight", torch.randn(2, 2, generator=g)),
            ("encoder.layers.0.blocks.0.mlp.projection.weight", torch.randn(8, 2, generator=g)),
            ("encoder.cls_tokens", torch.randn(1, 1, 2, generator=g)),
            ("decoder.weight", torch.randn(12, 2, 1, 1, generator=g)),
            ("decoder.bias", torch.randn(12, generator=g)),
            ("adam_m.decoder.bias", torch.randn(12, generator=g)),
            ("global_step", torch.tensor([3], dtype=torch.int32))]
    seed("raw_ringmo_tiny", b"\0" + b"".join(ms_tensor(n, t) for n, t in tiny))
    # data.pkl over four 64-byte storages '0'..'3' (F32, F16, I64, BF16)
    base = torch.arange(16, dtype=torch.float32) - 4
    h = torch.arange(32, dtype=torch.float32).half()
    sd = collections.OrderedDict([("a", base.reshape(4, 4)), ("at", base.reshape(4, 4).t()),
                                  ("h", h[4:12]), ("i", torch.arange(8).reshape(2, 4)),
                                  ("b", (torch.arange(32) - 16).bfloat16()[::3])])
    cfg = CfgNode({"MODEL": CfgNode({"TYPE": "vit"})})
    for name, obj in (("pkl_sd", sd), ("pkl_official", {"model": sd, "epoch": 3, "config": cfg,
                                                        "optimizer": {"state": {},
                                                                      "param_groups": [{"lr": 1e-3}]}})):
        buf = io.BytesIO()
        torch.save(obj, buf)
        with zipfile.ZipFile(buf) as z:
            pkl = z.read([n for n in z.namelist() if n.endswith("data.pkl")][0])
        seed(name, b"\1" + pkl)
    buf = io.BytesIO()
    torch.save(sd, buf, _use_new_zipfile_serialization=False)
    raw = buf.getvalue()
    f = io.BytesIO(raw)
    for _ in range(3):  # magic, protocol, sys_info: the fuzzer writes its own
        pickle.Unpickler(f).load()
    seed("legacy_sd", b"\2" + raw[f.tell():])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.parse_args()
    if not os.path.isdir(GOLDEN):
        sys.exit("run from the top of the source tree (tests/golden not found)")
    os.makedirs(BAD, exist_ok=True)
    CfgNode = install_fake_yacs()
    expected = {}

    sd = plain_sd()
    torch.save(sd, os.path.join(OUT, "plain_sd.pth"))
    expect(expected, "plain_sd.pth", sd)
    repack_deflated(os.path.join(OUT, "plain_sd.pth"), os.path.join(OUT, "deflated.pth"))
    expect(expected, "deflated.pth", sd)
    repack_zip64(os.path.join(OUT, "plain_sd.pth"), os.path.join(OUT, "zip64.pth"))
    expect(expected, "zip64.pth", sd)

    sd = half_sd()
    torch.save(sd, os.path.join(OUT, "half_bf16.pth"))
    expect(expected, "half_bf16.pth", sd)

    sd = views_sd()
    torch.save({"state_dict": sd, "step": 7}, os.path.join(OUT, "views.pth"))
    expect(expected, "views.pth", sd)

    sd = legacy_sd()
    torch.save({"model": sd, "epoch": 1}, os.path.join(OUT, "legacy.pth"),
               _use_new_zipfile_serialization=False)
    expect(expected, "legacy.pth", sd)

    torch.save(official_layout(CfgNode), os.path.join(OUT, "official_vit.pth"))

    with open(os.path.join(OUT, "ringmo_vit.ckpt"), "wb") as f:
        f.write(ringmo_simmim_vit())
    with open(os.path.join(OUT, "ringmo_swin.ckpt"), "wb") as f:
        f.write(ringmo_simmim_swin())
    with open(os.path.join(OUT, "ringmo_cls_vit.ckpt"), "wb") as f:
        f.write(ringmo_cls_vit())

    # a small MindSpore file for the broken variants and the fuzz seed: names kept as they are
    g = torch.Generator().manual_seed(7)
    small = (ms_tensor("w", torch.randn(3, 2, generator=g)) +
             ms_tensor("h", torch.randn(4, generator=g).half(), slices=2) +
             ms_tensor("n", torch.tensor([5, -6], dtype=torch.int64)))
    with open(os.path.join(OUT, "ms_small.ckpt"), "wb") as f:
        f.write(small)
    g = torch.Generator().manual_seed(7)  # the same draws again
    expected["ms_small.ckpt/w"] = torch.randn(3, 2, generator=g)
    expected["ms_small.ckpt/h"] = torch.randn(4, generator=g).half().float()
    expected["ms_small.ckpt/n"] = torch.tensor([5, -6])

    with zipfile.ZipFile(os.path.join(OUT, "plain_sd.pth")) as z:
        data_pkl = z.read([n for n in z.namelist() if n.endswith("data.pkl")][0])
    write_bad(os.path.join(OUT, "plain_sd.pth"), data_pkl, small)
    st_write(os.path.join(OUT, "expected.safetensors"), expected)
    write_fuzz_seeds(CfgNode)
    total = sum(os.path.getsize(os.path.join(d, f)) for d in (OUT, BAD)
                for f in os.listdir(d) if os.path.isfile(os.path.join(d, f)))
    print("wrote %s (%d KiB in all)" % (OUT, total // 1024))


if __name__ == "__main__":
    main()
