#!/usr/bin/env python3
"""Make the golden fixtures for tts-model's tests from onnxruntime (the reference).

Runs the Piper voice en_US-joe-medium with noise off (noise_scale = noise_w = 0, length_scale = 1),
exposing intermediate tensors as extra graph outputs (added with the `onnx` package), and writes, per
sentence, into tts-model/tests/fixtures/goldens/:
  <name>.json        text, phonemes, ids, w_ceil (durations), frames, samples, tensor file list
  <name>.<t>.f32     raw little-endian float32 tensors, channels first, batch dropped:
                     enc_x [hidden, T] encoder output, stats [2*inter, T] (m_p ; logs_p), logw [T],
                     z [inter, F] flow output (short sentences), audio [S] raw model output (short).
Long sentences keep only ids, logw and durations so that the committed fixtures stay small.
Noisy cases (`<name>_noisy`, voice default scales 0.667/1/0.8): the two RandomNormalLike nodes are
replaced by graph inputs, so the normal draws are known and stored too (noise_dp [2, T],
noise_z [inter, F]); these check the spline's tails and the prior sampling, which noise-off runs miss.

Usage: python3 make_goldens.py [--voice PATH] [--out DIR] [--large DIR]
  --large DIR additionally writes every tensor of every sentence to DIR (not committed; for local checks).
The script creates/uses a virtualenv at <workspace>/.venv with onnxruntime==1.31.*, onnx, numpy and
piper-tts (used only to turn text into phoneme ids) when those are not importable.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
VENV = os.path.join(ROOT, ".venv")
REQS = ["onnxruntime==1.31.*", "onnx", "numpy", "piper-tts"]


def ensure_env():
    try:
        import numpy  # noqa: F401
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import piper  # noqa: F401
        return
    except ImportError:
        pass
    py = os.path.join(VENV, "bin", "python")
    if os.path.abspath(sys.executable) == os.path.abspath(py):
        sys.exit("make_goldens: packages missing even inside the venv; run: %s -m pip install %s"
                 % (py, " ".join(REQS)))
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    subprocess.check_call([py, "-m", "pip", "install", "-q"] + REQS)
    os.execv(py, [py] + sys.argv)


# (name, text, keep z and audio)
SENTENCES = [
    ("hello", "Hello world.", True),
    ("raining", "Is it raining?", True),
    ("fox", "The quick brown fox jumps over the lazy dog.", True),
    ("commas", "Numbers, commas; and colons: all of them here!", False),
    ("long", "A much longer sentence, with several clauses and a lot of words, is needed to check "
             "that every duration and every frame count stays exactly the same as the reference "
             "implementation, even when the utterance lasts for many seconds of speech.", False),
]

TAPS = {
    "enc_x": "/enc_p/encoder/Mul_2_output_0",
    "stats": "/enc_p/Mul_2_output_0",
    "logw": "/dp/Split_output_0",
    "w_ceil": "/Ceil_output_0",
    "z": "/Mul_7_output_0",
}


NOISY = [("hello_noisy", "Hello world."), ("raining_noisy", "Is it raining?")]


def noisy_model(model, replace):
    """Copy of `model` whose RandomNormalLike nodes named in `replace` read graph inputs instead."""
    import copy
    import onnx
    m = copy.deepcopy(model)
    g = m.graph
    for i, n in enumerate(list(g.node)):
        if n.op_type == "RandomNormalLike" and n.name in replace:
            name = replace[n.name]
            g.node.remove(n)
            g.node.insert(i, onnx.helper.make_node("Identity", [name], [n.output[0]], name=n.name))
            g.input.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return m


def main():
    ensure_env()
    import numpy as np
    import onnx
    import onnxruntime as ort
    from piper import PiperVoice

    ap = argparse.ArgumentParser()
    ap.add_argument("--voice", default=os.path.join(ROOT, "voices", "en_US-joe-medium.onnx"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tts-model", "tests", "fixtures", "goldens"))
    ap.add_argument("--large", default=None)
    a = ap.parse_args()
    if not os.path.exists(a.voice):
        sys.exit("voice not found: %s (run tts-model/scripts/fetch-voice.sh)" % a.voice)

    model = onnx.load(a.voice)
    present = {o.name for o in model.graph.output}
    for tap in TAPS.values():
        if tap not in present:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(tap))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = ["output"] + list(TAPS.values())
    voice = PiperVoice.load(a.voice)

    os.makedirs(a.out, exist_ok=True)
    for name, text, full in SENTENCES:
        phon = voice.phonemize(text)[0]  # first sentence only
        ids = voice.phonemes_to_ids(phon)
        res = sess.run(names, {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": np.array([0.0, 1.0, 0.0], dtype=np.float32),
        })
        out = dict(zip(["audio"] + list(TAPS.keys()), res))
        w_ceil = out.pop("w_ceil").reshape(-1)
        tensors = {
            "enc_x": out["enc_x"][0], "stats": out["stats"][0], "logw": out["logw"].reshape(-1),
            "z": out["z"][0], "audio": out["audio"].reshape(-1),
        }
        keep = ["logw"] + (["enc_x", "stats", "z", "audio"] if full else [])
        meta = {
            "text": text, "phonemes": "".join(phon), "ids": [int(i) for i in ids],
            "w_ceil": [int(w) for w in w_ceil], "frames": int(w_ceil.sum()),
            "samples": int(tensors["audio"].size),
            "shapes": {k: list(tensors[k].shape) for k in tensors},
            "files": {k: "%s.%s.f32" % (name, k) for k in keep},
            "provenance": "onnxruntime %s, voice %s, scales [0, 1, 0] (noise off)"
                          % (ort.__version__, os.path.basename(a.voice)),
        }
        for k in keep:
            tensors[k].astype("<f4").tofile(os.path.join(a.out, meta["files"][k]))
        with open(os.path.join(a.out, name + ".json"), "w") as f:
            json.dump(meta, f, indent=1, ensure_ascii=False)
        if a.large:
            os.makedirs(a.large, exist_ok=True)
            lm = dict(meta, files={k: "%s.%s.f32" % (name, k) for k in tensors})
            for k in tensors:
                tensors[k].astype("<f4").tofile(os.path.join(a.large, lm["files"][k]))
            with open(os.path.join(a.large, name + ".json"), "w") as f:
                json.dump(lm, f, indent=1, ensure_ascii=False)
        print("%-8s ids %3d frames %5d samples %7d %s" % (name, len(ids), meta["frames"], meta["samples"],
                                                        "full" if full else "durations only"))

    # Noise on, with known draws.
    rng = np.random.default_rng(1234)
    scales = [0.667, 1.0, 0.8]
    m1 = noisy_model(model, {"/dp/RandomNormalLike": "noise_dp"})
    m2 = noisy_model(model, {"/dp/RandomNormalLike": "noise_dp", "/RandomNormalLike": "noise_z"})
    s1 = ort.InferenceSession(m1.SerializeToString(), so, providers=["CPUExecutionProvider"])
    s2 = ort.InferenceSession(m2.SerializeToString(), so, providers=["CPUExecutionProvider"])
    for name, text in NOISY:
        ids = voice.phonemes_to_ids(voice.phonemize(text)[0])
        feed = {"input": np.array([ids], dtype=np.int64),
                "input_lengths": np.array([len(ids)], dtype=np.int64),
                "scales": np.array(scales, dtype=np.float32),
                "noise_dp": rng.standard_normal((1, 2, len(ids))).astype(np.float32)}
        w_ceil = s1.run([TAPS["w_ceil"]], feed)[0].reshape(-1)
        frames = int(w_ceil.sum())
        feed["noise_z"] = rng.standard_normal((1, 192, frames)).astype(np.float32)
        audio, w2, logw = s2.run(["output", TAPS["w_ceil"], TAPS["logw"]], feed)
        assert (w2.reshape(-1) == w_ceil).all()
        tensors = {"noise_dp": feed["noise_dp"][0], "noise_z": feed["noise_z"][0],
                   "logw": logw.reshape(-1), "audio": audio.reshape(-1)}
        meta = {
            "text": text, "ids": [int(i) for i in ids], "scales": scales,
            "w_ceil": [int(w) for w in w_ceil], "frames": frames, "samples": int(audio.size),
            "shapes": {k: list(v.shape) for k, v in tensors.items()},
            "files": {k: "%s.%s.f32" % (name, k) for k in tensors},
            "provenance": "onnxruntime %s, voice %s, scales %s, RandomNormalLike replaced by the stored "
                          "noise_dp / noise_z" % (ort.__version__, os.path.basename(a.voice), scales),
        }
        for k, v in tensors.items():
            v.astype("<f4").tofile(os.path.join(a.out, meta["files"][k]))
        with open(os.path.join(a.out, name + ".json"), "w") as f:
            json.dump(meta, f, indent=1, ensure_ascii=False)
        print("%-14s ids %3d frames %5d samples %7d noise on" % (name, len(ids), frames, audio.size))


if __name__ == "__main__":
    main()
