#!/usr/bin/env python3
"""Speed of tts-model's CPU backend vs onnxruntime (what piper-tts uses) on the same phoneme ids.

Three utterances (~1 s, ~6 s, ~20 s of audio), noise off, 1 and 2 threads each, in one run.
onnxruntime: best of REPS runs of session.run (model load timed separately), peak RSS of a separate
process. Ours: the `synth_bench` example (best of REPS, load time, first-audio time and VmHWM), one
process per (utterance, threads). Prints a table and ratios ours/onnxruntime (< 1 means we are faster).

Usage: python3 tts-model/scripts/bench_vs_onnxruntime.py [--voice PATH] [--reps N]
Needs the venv of scripts/goldens/make_goldens.py (created on first use) and cargo.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "goldens"))
from make_goldens import ensure_env  # noqa: E402

TEXTS = {
    "1s": "Hello world, how are you?",
    "6s": "The quick brown fox jumps over the lazy dog, and then it runs far away into the dark "
          "forest while the dog sleeps.",
    "20s": "A much longer sentence, with several clauses and a lot of words, is needed to measure "
           "how fast the synthesis really is, because the speed of a text to speech system on long "
           "inputs decides whether it can read a whole book aloud, page after page, without making "
           "the listener wait, and whether it can do so on a small computer with only two cores and "
           "very little memory to spare for anything else that might be running.",
}

ORT_CHILD = r"""
import json, resource, sys, time
import numpy as np, onnxruntime as ort
voice, threads, reps, ids = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
t0 = time.perf_counter()
so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
s = ort.InferenceSession(voice, so, providers=["CPUExecutionProvider"])
load = time.perf_counter() - t0
feed = {"input": np.array([ids], dtype=np.int64), "input_lengths": np.array([len(ids)], dtype=np.int64),
        "scales": np.array([0.0, 1.0, 0.0], dtype=np.float32)}
best = 1e9
for _ in range(reps):
    t = time.perf_counter(); out = s.run(None, feed)[0]; best = min(best, time.perf_counter() - t)
print(json.dumps({"load_s": load, "synth_s": best, "samples": int(out.size),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main():
    ensure_env()
    from piper import PiperVoice

    ap = argparse.ArgumentParser()
    ap.add_argument("--voice", default=os.path.join(ROOT, "voices", "en_US-joe-medium.onnx"))
    ap.add_argument("--reps", type=int, default=3, help="runs per process (best is kept)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="alternating onnxruntime/ours processes per case (best is kept; shields "
                         "the comparison from load that other processes put on the machine)")
    a = ap.parse_args()
    if not os.path.exists(a.voice):
        sys.exit("voice not found: %s (run tts-model/scripts/fetch-voice.sh)" % a.voice)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    subprocess.check_call(["cargo", "build", "--release", "-q", "-p", "tts-model", "--example", "synth_bench"],
                          cwd=ROOT, env=dict(os.environ, CARGO_TARGET_DIR=target))
    ours_bin = os.path.join(target, "release", "examples", "synth_bench")
    pv = PiperVoice.load(a.voice)
    rows = []
    for label, text in TEXTS.items():
        ids = pv.phonemes_to_ids([p for s in pv.phonemize(text) for p in s])
        for threads in (1, 2):
            ort_r = ours = None
            for _ in range(a.rounds):
                r = json.loads(subprocess.check_output(
                    [sys.executable, "-c", ORT_CHILD, a.voice, str(threads), str(a.reps), json.dumps(ids)]))
                o = json.loads(subprocess.check_output(
                    [ours_bin, a.voice, str(threads), str(a.reps), ",".join(map(str, ids))]))
                ort_r = best(ort_r, r)
                ours = best(ours, o)
            if ours["samples"] != ort_r["samples"]:
                print("WARNING: sample counts differ (%d vs %d)" % (ours["samples"], ort_r["samples"]))
            rows.append((label, threads, len(ids), ours, ort_r))
    print("cpu: %s; load average at the end %s; best of %d rounds x %d runs" % (
        cpu_name(), " ".join(open("/proc/loadavg").read().split()[:3]), a.rounds, a.reps))
    print("%-4s %3s %5s %7s | %9s %9s %6s | %9s %9s | %7s %7s | %8s %8s" % (
        "utt", "thr", "ids", "audio_s", "ort_s", "ours_s", "ratio", "ort_rtf", "ours_rtf",
        "ort_ld", "our_ld", "ort_MiB", "our_MiB"))
    for label, threads, n, o, r in rows:
        print("%-4s %3d %5d %7.2f | %9.4f %9.4f %6.2f | %9.4f %9.4f | %7.3f %7.3f | %8.0f %8.0f   first audio %.3f s" % (
            label, threads, n, o["audio_s"], r["synth_s"], o["synth_s"], o["synth_s"] / r["synth_s"],
            r["synth_s"] / o["audio_s"], o["synth_s"] / o["audio_s"], r["load_s"], o["load_s"],
            r["peak_rss_mib"], o["peak_rss_mib"], o["first_audio_s"]))


def best(old, new):
    """Keep the fastest synthesis, the fastest load and the largest peak memory."""
    if old is None:
        return new
    out = dict(old)
    for k in ("synth_s", "load_s", "first_audio_s"):
        if k in new:
            out[k] = min(old[k], new[k])
    out["peak_rss_mib"] = max(old["peak_rss_mib"], new["peak_rss_mib"])
    return out


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + " x%d" % os.cpu_count()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
