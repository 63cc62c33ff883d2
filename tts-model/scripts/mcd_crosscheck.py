#!/usr/bin/env python3
"""Cross-check the scale of the project's MCD against the conventional (SPTK) mel-cepstral distortion.

What it computes
----------------
For pairs (reference, test) of 22.05 kHz signals with the same number of frames it prints, per pair:

* ``ours``: the project's MCD, an exact float64 replica of ``tts-model/src/quality/mod.rs``
  (frames of 1024 samples every 256, zero-padded by 512 at both ends, periodic Hann, |FFT|,
  80 triangular HTK-mel filters 0 Hz..Nyquist with peak 1, ``ln(max(mel, 1e-5))``, orthonormal
  DCT-II, coefficients 1..24, ``10/ln10 * sqrt(2 * sum d^2)``, mean over frames).
* ``mcep``: conventional MCD (Kubichek 1993) with SPTK mel-cepstra ``pysptk.mcep`` (UELS, order 24,
  alpha 0.455, no periodogram floor: etype=0, eps=0; eps=1e-8 only for a frame
  where that fails, reported on stderr) of exactly the same windowed frames; same formula, c0 excluded.
* ``sp2mc``: the same with ``pysptk.sp2mc`` (log periodogram -> cepstrum -> freqt) on the same
  frames' power spectra (floored at 1e-12).
* ``world``: the same with ``pysptk.sp2mc`` on a WORLD envelope (pyworld harvest + cheaptrick,
  frame period 256/22050 s so WORLD frame i is centred on sample 256 i like ours; each signal is
  analysed on its own, as evaluation scripts do).

Every metric is given over all frames and over the "loud" frames only: frames whose reference
energy (same windowed frames) is within 40 dB of the loudest frame. ``ratio = ours / conventional``.
All signals are the raw float model outputs (``tts synth --out-f32``), so reference and test are
scaled identically (no int16 peak normalisation).

Test signals (all from the cpu backend, noise off): (a) reference + white Gaussian noise at
20..100 dB SNR (whole-signal SNR, fixed seed), (b) ``--backend sim`` with the ``hifi`` and
``bfp8-lofi`` plans where their frame count equals the cpu's (others are listed as skipped),
(c) gain 0.5 (both metrics should be ~0), (d) a mild smooth spectral tilt
``y[n] = x[n] - b x[n-1]``, b = 0.1 and 0.003
(a pure low-quefrency change; the small one lands near the 0.1 dB gate).

Replica check: for every sim pair with matching frames the script also runs ``tts eval`` and
prints its MCD next to the replica's.

How to run (from the repository root; needs the release binary, a voice and espeak-ng data as
``tts synth`` does):
    python3 -m venv /tmp/mcdvenv
    /tmp/mcdvenv/bin/pip install numpy scipy soundfile pysptk pyworld
    /tmp/mcdvenv/bin/python tts-model/scripts/mcd_crosscheck.py \
        --tts target-tts/release/tts --voice voices/en_US-joe-medium.onnx --work /tmp/mcd
PyPI packages: numpy, scipy, soundfile, pysptk, pyworld (pyworld is optional: ``--no-world``).
Tested with numpy 2.4.6, pysptk 1.0.1, pyworld 0.3.5. Takes about 1.5 minutes (1 thread); synthesized audio is cached in --work.
"""

import argparse
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pysptk

SR = 22050
N_FFT = 1024
HOP = 256
N_MELS = 80
N_CEP = 24
ALPHA = 0.455
K_DB = 10.0 / math.log(10.0)

TEXTS = [
    "Hello world.",
    "The quick brown fox jumps over the lazy dog.",
    "It was a bright cold day in April, and the clocks were striking thirteen.",
    "Please call Stella.",
    "Tensix cores run the whole model on device.",
    "A rainbow is a meteorological phenomenon.",
]


# ----------------------------------------------------------------------------- framing / ours
def frames(x):
    """Frames of quality/mod.rs: len/HOP + 1 frames centred on j*HOP, zero-padded, periodic Hann."""
    n = len(x) // HOP + 1
    pad = np.concatenate([np.zeros(N_FFT // 2), x, np.zeros(N_FFT)])
    idx = np.arange(n)[:, None] * HOP + np.arange(N_FFT)[None, :]
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    return pad[idx] * win[None, :]


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + f / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_filters():
    hi = hz_to_mel(SR / 2.0)
    edges = mel_to_hz(hi * np.arange(N_MELS + 2) / (N_MELS + 1))
    f = np.arange(N_FFT // 2 + 1) * SR / N_FFT
    fb = np.zeros((N_MELS, len(f)))
    for m in range(N_MELS):
        lo, c, r = edges[m], edges[m + 1], edges[m + 2]
        up = (f > lo) & (f <= c)
        dn = (f > c) & (f < r)
        fb[m, up] = (f[up] - lo) / (c - lo)
        fb[m, dn] = (r - f[dn]) / (r - c)
    return fb


FB = mel_filters()


def dct_matrix(n, count):
    k = np.arange(count)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * k * (i + 0.5) / n) * np.sqrt(2.0 / n)
    m[0] *= np.sqrt(0.5)
    return m


DCT = dct_matrix(N_MELS, N_CEP + 1)


def ours_cep(fr):
    mag = np.abs(np.fft.rfft(fr, axis=1))
    logmel = np.log(np.maximum(mag @ FB.T, 1e-5))
    return logmel @ DCT.T, logmel


def frame_mcd(ca, cb):
    """Per-frame MCD in dB over coefficients 1..24 (c0 excluded)."""
    d = ca[:, 1 : N_CEP + 1] - cb[:, 1 : N_CEP + 1]
    return K_DB * np.sqrt(2.0 * np.sum(d * d, axis=1))


# ----------------------------------------------------------------------------- conventional
def mcep_cep(fr):
    out = np.empty((len(fr), N_CEP + 1))
    for i, f in enumerate(fr):
        try:
            # No periodogram floor (eps=0): an absolute floor makes the cepstra gain-dependent.
            out[i] = pysptk.mcep(f, order=N_CEP, alpha=ALPHA, etype=0, eps=0.0)
        except RuntimeError:
            out[i] = pysptk.mcep(f, order=N_CEP, alpha=ALPHA, etype=1, eps=1e-8)
            print(f"  note: mcep frame {i} needed eps=1e-8", file=sys.stderr)
    return out


def sp2mc_cep(fr):
    p = np.maximum(np.abs(np.fft.rfft(fr, axis=1)) ** 2, 1e-12)
    return np.stack([pysptk.sp2mc(row, N_CEP, ALPHA) for row in p])


def world_cep(x):
    import pyworld

    period = 1000.0 * HOP / SR
    f0, t = pyworld.harvest(x, SR, frame_period=period)
    sp = pyworld.cheaptrick(x, f0, t, SR)
    return pysptk.sp2mc(sp, N_CEP, ALPHA)


# ----------------------------------------------------------------------------- pairs
def loud_mask(fr_ref):
    e = 10.0 * np.log10(np.sum(fr_ref**2, axis=1) + 1e-20)
    return e >= e.max() - 40.0


def measure(ref, test, world):
    fa, fb = frames(ref), frames(test)
    mask = loud_mask(fa)
    res = {}
    cands = {
        "ours": (ours_cep(fa)[0], ours_cep(fb)[0]),
        "mcep": (mcep_cep(fa), mcep_cep(fb)),
        "sp2mc": (sp2mc_cep(fa), sp2mc_cep(fb)),
    }
    if world:
        cands["world"] = (world_cep(ref), world_cep(test))
    for name, (ca, cb) in cands.items():
        n = min(len(ca), len(cb), len(mask))
        if n != len(mask):
            print(f"  note: {name} has {len(ca)} frames, ours {len(mask)}; using {n}", file=sys.stderr)
        d = frame_mcd(ca[:n], cb[:n])
        res[name] = (d.mean(), d[mask[:n]].mean())
    res["loud_frac"] = mask.mean()
    return res


def synth(tts, voice, text, backend, precision, out):
    """Raw f32 output of `tts synth` (cached in the work folder); None when synthesis fails."""
    f32 = out.with_suffix(".f32")
    if not f32.exists():
        r = subprocess.run(
            [tts, "synth", "--voice", voice, "--backend", backend, "--precision", precision,
             "--threads", "1", "--noise-scale", "0", "--noise-w", "0", "--quiet",
             "--text", text, "--out", str(out), "--out-f32", str(f32)],
            capture_output=True, text=True,
        )
        if r.returncode != 0:
            print(f"<!-- synth {backend} {precision} failed: {r.stderr.strip()[:300]} -->")
            return None
    return np.fromfile(f32, dtype="<f4").astype(np.float64)


def eval_mcd(tts, voice, text, precision):
    r = subprocess.run(
        [tts, "eval", "--voice", voice, "--backend", "sim", "--precision", precision,
         "--threads", "1", "--noise-scale", "0", "--noise-w", "0", "--text", text],
        capture_output=True, text=True,
    )
    m = re.search(r"^\s+1\s+\d+\s+(\d+)/(\d+)\s+([0-9.]+)", r.stdout + r.stderr, re.M)
    return float(m.group(3)) if m else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tts", default="target-tts/release/tts")
    ap.add_argument("--voice", default="voices/en_US-joe-medium.onnx")
    ap.add_argument("--work", default="/tmp/mcd_crosscheck")
    ap.add_argument("--no-world", action="store_true", help="skip the WORLD (pyworld) variant")
    ap.add_argument("--no-sim", action="store_true", help="skip the sim backend pairs")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    world = not args.no_world
    names = ["ours", "mcep", "sp2mc"] + (["world"] if world else [])

    hdr = "| text | test | frames | loud | " + " | ".join(
        f"{n} all | {n} loud" for n in names) + " | " + " | ".join(
        f"ours/{n} all | ours/{n} loud" for n in names[1:]) + " |"
    print(hdr)
    print("|" + "---|" * (hdr.count("|") - 1))
    rng = np.random.default_rng(12345)
    ratios = {n: [] for n in names[1:]}
    checks = []
    by_label = {}
    for ti, text in enumerate(TEXTS):
        ref = synth(args.tts, args.voice, text, "cpu", "hifi", work / f"t{ti}_cpu.wav")
        if ref is None:
            sys.exit("the cpu reference failed to synthesize (see above)")
        tests = []
        for snr in (20, 30, 40, 50, 60, 80, 100):
            p = np.mean(ref**2) / 10 ** (snr / 10)
            tests.append((f"noise {snr} dB", ref + rng.standard_normal(len(ref)) * math.sqrt(p), True))
        tests.append(("gain 0.5", 0.5 * ref, False))
        for b in (0.1, 0.003):
            tilt = ref.copy()
            tilt[1:] -= b * ref[:-1]
            tests.append((f"tilt 1-{b}z^-1", tilt, True))
        if not args.no_sim:
            for prec in ("hifi", "bfp8-lofi"):
                y = synth(args.tts, args.voice, text, "sim", prec, work / f"t{ti}_sim_{prec}.wav")
                if y is None:
                    continue
                if len(y) // HOP != len(ref) // HOP:
                    print(f"<!-- t{ti} sim {prec}: {len(y)//HOP} frames vs cpu {len(ref)//HOP}: skipped -->")
                    continue
                tests.append((f"sim {prec}", y, True))
                checks.append((ti, prec, y))
        for label, y, use in tests:
            r = measure(ref, y, world)
            cells = [f"{r[n][0]:.4f} | {r[n][1]:.4f}" for n in names]
            rat = []
            for n in names[1:]:
                # A ratio of two ~0 numbers (gain change) means nothing: n/a below 1e-3 dB.
                a = r["ours"][0] / r[n][0] if min(r["ours"][0], r[n][0]) > 1e-3 else float("nan")
                b = r["ours"][1] / r[n][1] if min(r["ours"][1], r[n][1]) > 1e-3 else float("nan")
                rat.append(f"{a:.2f} | {b:.2f}".replace("nan", "n/a"))
                if use:
                    ratios[n].append((label, a, b))
            by_label.setdefault(label, []).append(r)
            print(f"| t{ti} | {label} | {len(ref)//HOP} | {r['loud_frac']:.2f} | "
                  + " | ".join(cells) + " | " + " | ".join(rat) + " |", flush=True)

    print("\nSummary of ours/conventional over all pairs except gain (median [min, max]):")
    for n, rows in ratios.items():
        for col, lab in ((1, "all frames"), (2, "loud frames")):
            v = np.array([row[col] for row in rows])
            v = v[np.isfinite(v)]
            print(f"  ours/{n:5s} {lab:11s}: {np.median(v):.2f} [{v.min():.2f}, {v.max():.2f}]  (n={len(v)})")
        for kind in ("noise", "sim", "tilt"):
            v = np.array([row[2] for row in rows if row[0].startswith(kind)])
            v = v[np.isfinite(v)]
            if len(v):
                print(f"      {kind:5s} loud frames: median {np.median(v):.2f} [{v.min():.2f}, {v.max():.2f}]")

    print("\nPer test signal, loud frames, mean over the texts (ratio = ours / conventional):\n")
    print("| test | pairs | " + " | ".join(names) + " | "
          + " | ".join(f"ours/{n}" for n in names[1:]) + " |")
    print("|" + "---|" * (2 + 2 * len(names) - 1))
    for label, rs in by_label.items():
        mean = {n: np.mean([r[n][1] for r in rs]) for n in names}
        rat = [f"{mean['ours'] / mean[n]:.2f}" if min(mean["ours"], mean[n]) > 1e-3 else "n/a"
               for n in names[1:]]
        print(f"| {label} | {len(rs)} | " + " | ".join(f"{mean[n]:.4f}" for n in names)
              + " | " + " | ".join(rat) + " |")

    print("\nReplica check against `tts eval` (sim pairs with matching frame counts):")
    for ti, prec, y in checks:
        ref = np.fromfile(work / f"t{ti}_cpu.f32", dtype="<f4").astype(np.float64)
        mine = frame_mcd(ours_cep(frames(ref))[0], ours_cep(frames(y))[0]).mean()
        theirs = eval_mcd(args.tts, args.voice, TEXTS[ti], prec)
        print(f"  t{ti} sim {prec}: replica {mine:.4f} dB, tts eval {theirs:.4f} dB"
              " (nan: eval failed or printed no row; the sim output must come from the same binary)")


if __name__ == "__main__":
    main()
