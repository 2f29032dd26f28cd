#!/usr/bin/env python3
"""Fuzzes the flash-attention command line with hostile .npy files and option values.

Each case builds a small attention problem in a fresh directory, then breaks it: a mutated
.npy header (shapes near 2^63, empty shapes whose strides overflow, wrong dtypes, truncated or
padded data, garbage), random option values (window bounds near Int.max, -1, non-numbers,
NaN/inf/huge scales and softcaps, flags in odd places), or paths that alias each other, a
FIFO, a missing directory, names at NAME_MAX. It runs `flash-attention run` (and a few `demo`s)
and asserts what the README promises:

  * the exit code is 0, 1 or 2, never a signal, and the tool ends before the timeout;
  * a failure prints one line on stderr (`flash-attention: error: ...`) and leaves every file
    as it was (no output created, none changed, no temporary left behind);
  * a success writes every requested output as a complete .npy file.

The cases come from a fixed seed, so a failure replays with `--seed S --only N`. Standard
library only (no NumPy), so CI needs nothing installed.

  python3 scripts/fuzz-cli.py [--cli .build/debug/flash-attention] [--cases 400] [--seed 16]
"""

import argparse
import concurrent.futures
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile

INT_MAX = 2**63 - 1
HOSTILE_INTS = [0, 1, 2, 7, 2**31 - 1, 2**31, 2**32, 2**40, 2**62, INT_MAX - 1, INT_MAX, 2**63, 2**64, 10**30]
HOSTILE_BOUNDS = ["-1", "-2", "0", "1", "3", "-0", str(2**31), str(INT_MAX - 1), str(INT_MAX), str(2**63),
                  str(-(2**63)), str(-(INT_MAX - 1)), "abc", "1.5", "", "--causal", "0x10", "+4", " 5"]
HOSTILE_FLOATS = ["1", "0.125", "0", "-0", "-1", "nan", "inf", "-inf", "1e30", "1e-30", "1e4", "3.5e3",
                  "1e39", "abc", "", "0x1p3", "--causal"]


def npy_bytes(shape, descr="<f4", data=None, version=1, fortran="False", rng=None):
    """A .npy file as NumPy writes it (header padded to 64 bytes), with `data` or random floats."""
    shape_text = "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
    header = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape_text}, }}"
    prefix = 10 if version == 1 else 12
    header += " " * ((64 - (prefix + len(header) + 1) % 64) % 64) + "\n"
    length = len(header).to_bytes(2 if version == 1 else 4, "little")
    out = b"\x93NUMPY" + bytes([version, 0]) + length + header.encode()
    if data is None:
        count = 1
        for size in shape:
            count *= size
        code = "e" if descr == "<f2" else "f"
        data = struct.pack(f"<{count}{code}", *(rng.gauss(0, 1) for _ in range(count)))
    return out + data


def read_npy_header(data):
    """(descr, shape, data offset) of a .npy written by the tool, or None if malformed."""
    if len(data) < 10 or data[:6] != b"\x93NUMPY":
        return None
    length = int.from_bytes(data[8:10], "little")
    text = data[10:10 + length].decode("ascii", "replace")
    try:
        import ast
        fields = ast.literal_eval(text.strip())
        return fields["descr"], tuple(fields["shape"]), 10 + length
    except Exception:
        return None


class Case:
    """One fuzz case: files to create, arguments, and which outputs it asks for."""

    def __init__(self, number, seed):
        self.number = number
        self.rng = random.Random(seed * 1_000_003 + number)
        self.files = {}      # name -> bytes
        self.fifos = []
        self.links = {}      # name -> target
        self.dirs = []
        self.args = []
        self.outputs = []    # paths the run writes on success
        self.label = ""

    def base_problem(self):
        r = self.rng
        batch = r.choice([0, 1, 1, 2])
        sq, sk = r.choice([0, 1, 5, 17, 33]), r.choice([0, 1, 4, 19, 40])
        hkv = r.choice([1, 1, 2])
        hq = hkv * r.choice([1, 2, 3])
        d, dv = r.choice([1, 8, 16, 33]), r.choice([1, 8, 16, 24])
        descr = r.choice(["<f4", "<f4", "<f2"])
        self.shapes = {"q": [batch, sq, hq, d], "k": [batch, sk, hkv, d], "v": [batch, sk, hkv, dv],
                       "dout": [batch, sq, hq, dv]}
        for name, shape in self.shapes.items():
            self.files[name + ".npy"] = npy_bytes(shape, descr, rng=r)
        self.args = ["run", "--q", "q.npy", "--k", "k.npy", "--v", "v.npy", "--out", "o.npy", "--device", "cpu"]
        self.outputs = ["o.npy"]
        if r.random() < 0.5:
            self.args += ["--lse", "lse.npy"]
            self.outputs.append("lse.npy")
        if r.random() < 0.3:
            self.args += ["--dout", "dout.npy", "--dq", "dq.npy", "--dk", "dk.npy", "--dv", "dv.npy"]
            self.outputs += ["dq.npy", "dk.npy", "dv.npy"]

    def mutate_header(self):
        r = self.rng
        name = r.choice(["q.npy", "k.npy", "v.npy"])
        original = self.files[name]
        kind = r.randrange(9)
        self.label = f"header:{name}:{kind}"
        if kind == 0:    # a hostile shape, data as it was
            shape = [r.choice(HOSTILE_INTS) for _ in range(r.choice([1, 3, 4, 4, 4, 5]))]
            if r.random() < 0.5:
                shape[r.randrange(len(shape))] = 0
            self.files[name] = npy_bytes(shape, data=b"", rng=r) + original[128:] * r.randrange(2)
        elif kind == 1:  # an unsupported dtype
            descr = r.choice(["<f8", ">f4", "<i4", "|b1", "<c8", "<u2", "|V8", "<f16", "f4", ""])
            self.files[name] = npy_bytes([1, 1, 1, 1], descr=descr, data=b"\0" * 8, rng=r)
        elif kind == 2:  # truncated anywhere
            self.files[name] = original[:r.randrange(len(original) + 1)]
        elif kind == 3:  # extra bytes
            self.files[name] = original + bytes(r.randrange(1, 70))
        elif kind == 4:  # random bytes flipped in the header
            data = bytearray(original)
            for _ in range(r.randrange(1, 6)):
                data[r.randrange(min(len(data), 128))] = r.randrange(256)
            self.files[name] = bytes(data)
        elif kind == 5:  # a wrong header length field
            data = bytearray(original)
            data[8:10] = r.choice([0, 1, 63, 117, 118, 200, 65535]).to_bytes(2, "little")
            self.files[name] = bytes(data)
        elif kind == 6:  # version and Fortran order
            self.files[name] = npy_bytes(self.shape_of(name), version=r.choice([2, 3]), rng=r) if r.random() < 0.5 \
                else npy_bytes(self.shape_of(name), fortran="True", rng=r)
        elif kind == 7:  # a header that is not a dictionary at all
            junk = bytes(r.randrange(32, 127) for _ in range(r.randrange(0, 120))) + b"\n"
            self.files[name] = b"\x93NUMPY\x01\x00" + len(junk).to_bytes(2, "little") + junk
        else:            # shape text with odd syntax
            text = r.choice(["(-1, 2)", "(1, 2", "()", "(1,,2)", "(1.5, 2)", "('a',)", "(1, 2, 3, 4, 5, 6, 7, 8, 9)",
                             "(" + "9" * 30 + ",)", "(0x10,)", "(1, -0)"])
            header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {text}, }}\n"
            self.files[name] = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()

    def shape_of(self, name):
        return self.shapes[name.removesuffix(".npy")]

    def mutate_options(self):
        r = self.rng
        self.label = "options"
        for _ in range(r.randrange(1, 5)):
            flag = r.choice(["--window-left", "--window-right", "--scale", "--softcap", "--causal",
                             "--deterministic", "--device", "--window-left=", "--window-right=", "--scale="])
            if flag in ("--causal", "--deterministic"):
                self.args.append(flag)
            elif flag == "--device":
                self.args += [flag, r.choice(["cpu", "auto", "cuda", "cuda:7", "tpu", ""])]
            elif flag.endswith("="):
                values = HOSTILE_FLOATS if "scale" in flag else HOSTILE_BOUNDS
                self.args.append(flag + r.choice(values))
            else:
                values = HOSTILE_FLOATS if flag in ("--scale", "--softcap") else HOSTILE_BOUNDS
                self.args += [flag, r.choice(values)]
        if r.random() < 0.1:  # half the backward flags
            self.args += ["--dout", "dout.npy", "--dq", "dq.npy"]

    def mutate_paths(self):
        r = self.rng
        kind = r.randrange(8)
        self.label = f"paths:{kind}"
        if kind == 0:
            self.args += ["--lse", r.choice(["o.npy", "./o.npy", "here/o.npy", "link.npy"])]
            self.links.update({"here": ".", "link.npy": "o.npy"})
            self.files.setdefault("o.npy", b"an earlier result")
        elif kind == 1:
            self.args[self.args.index("--out") + 1] = r.choice(["q.npy", "./k.npy", "here/v.npy"])
            self.links["here"] = "."
        elif kind == 2:
            self.fifos.append("fifo.npy")
            self.args[self.args.index(r.choice(["--q", "--k", "--v"])) + 1] = "fifo.npy"
        elif kind == 3:
            self.args[self.args.index("--out") + 1] = "missing/dir/o.npy"
        elif kind == 4:
            name = "o" * r.choice([240, 243, 244, 250, 251, 252, 256, 300]) + ".npy"
            self.args[self.args.index("--out") + 1] = name
            self.outputs = [name if o == "o.npy" else o for o in self.outputs]
        elif kind == 5:
            self.dirs.append("adir")
            self.args[self.args.index("--out") + 1] = "adir"
        elif kind == 6:
            self.args[self.args.index("--k") + 1] = r.choice(["absent.npy", ".", "/dev/zero", "/dev/null"])
        else:
            self.files["o.npy"] = b"an earlier result that must survive"
            self.args += ["--scale", "-1"]  # fails after the outputs were named

    def demo(self):
        r = self.rng
        self.label = "demo"
        self.args = ["demo", "--device", "cpu", "--repeats", "1", "--seqlen", r.choice(["1", "7", "33", "0", "-1", "x"]),
                     "--head-dim", r.choice(["1", "8", "17", "0"]), "--check-rows", r.choice(["1", "4", "0"])]
        if r.random() < 0.7:
            self.args += ["--heads", r.choice(["1", "2", "3", "4", "0", "-3"])]
        if r.random() < 0.5:
            self.args += ["--kv-heads", r.choice(["1", "2", "3", "0", "-1"])]
        if r.random() < 0.3:
            self.args += ["--batch", r.choice(["1", "2", "0"])]
        self.outputs = []

    def build(self):
        r = self.rng
        self.base_problem()
        roll = r.random()
        if roll < 0.08:
            self.demo()
        elif roll < 0.45:
            self.mutate_header()
        elif roll < 0.8:
            self.mutate_options()
        elif roll < 0.95:
            self.mutate_paths()
        else:
            self.label = "valid"
        return self


def snapshot(directory):
    """Every entry of `directory` with its bytes (links by target), for before/after checks."""
    state = {}
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if os.path.islink(path):
            state[name] = ("link", os.readlink(path))
        elif os.path.isfile(path):
            with open(path, "rb") as f:
                state[name] = ("file", f.read())
        else:
            state[name] = ("other", None)
    return state


def run_case(case, cli, timeout):
    """Runs one case; returns (exit code or None, None when it holds else the failure)."""
    directory = tempfile.mkdtemp(prefix=f"fuzz-cli-{case.number}-")
    try:
        for name, data in case.files.items():
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)
        for name in case.fifos:
            os.mkfifo(os.path.join(directory, name))
        for name, target in case.links.items():
            os.symlink(target, os.path.join(directory, name))
        for name in case.dirs:
            os.mkdir(os.path.join(directory, name))
        before = snapshot(directory)
        try:
            result = subprocess.run([cli] + case.args, cwd=directory, capture_output=True, timeout=timeout,
                                    stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return None, f"hung (no exit within {timeout} s)"
        code = result.returncode
        return code, check_outcome(case, directory, before, code, result.stderr.decode("utf-8", "replace"))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def check_outcome(case, directory, before, code, stderr):
    """None when a finished run kept the promises, else what it broke."""
    if code < 0:
        return f"killed by signal {signal.Signals(-code).name}; stderr: {stderr[-400:]!r}"
    if code not in (0, 1, 2):
        return f"exit code {code}; stderr: {stderr[-400:]!r}"
    after = snapshot(directory)
    leftovers = [name for name in after if ".tmp-" in name]
    if leftovers:
        return f"exit {code} left temporaries {leftovers}"
    if code != 0:
        lines = stderr.splitlines()
        if len(lines) != 1 or not lines[0].startswith("flash-attention: error: "):
            return f"exit {code} without exactly one error line: {stderr[-600:]!r}"
        if after != before:
            changed = sorted(set(after) ^ set(before) | {n for n in before if n in after and before[n] != after[n]})
            return f"exit {code} but files changed: {changed}"
        return None
    for name in case.outputs:
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            return f"exit 0 but output {name} missing"
        with open(path, "rb") as f:
            data = f.read()
        header = read_npy_header(data)
        if header is None:
            return f"exit 0 but output {name} is not a .npy file"
        descr, shape, offset = header
        count = 1
        for s in shape:
            count *= s
        if len(data) - offset != count * (4 if descr == "<f4" else 2):
            return f"exit 0 but output {name} is partial ({len(data) - offset} data bytes for {shape} {descr})"
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cli", default=".build/debug/flash-attention")
    parser.add_argument("--cases", type=int, default=400)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=30, help="seconds one case may run")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", type=int, help="run just this case number (to replay a failure)")
    options = parser.parse_args()
    if not os.access(options.cli, os.X_OK):
        sys.exit(f"fuzz-cli: no executable at {options.cli} (run `swift build` first, or pass --cli)")
    options.cli = os.path.abspath(options.cli)
    numbers = [options.only] if options.only is not None else range(options.cases)
    cases = [Case(n, options.seed).build() for n in numbers]
    env_backend = os.environ.pop("FLASH_ATTENTION_BACKEND", None)  # the cases choose --device themselves
    # A crash ends at once with its signal (the runtime's backtracer would outlive a timeout and
    # hold the pipes); replay a failing case by hand for its backtrace.
    os.environ["SWIFT_BACKTRACE"] = "enable=no"
    failures = []
    codes = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=options.jobs) as pool:
        futures = {pool.submit(run_case, case, options.cli, options.timeout): case for case in cases}
        for future in concurrent.futures.as_completed(futures):
            case = futures[future]
            code, problem = future.result()
            codes[code] = codes.get(code, 0) + 1
            if problem:
                failures.append((case, problem))
    labels = {}
    for case in cases:
        kind = case.label.split(":")[0]
        labels[kind] = labels.get(kind, 0) + 1
    summary = ", ".join(f"{count} {kind}" for kind, count in sorted(labels.items()))
    if env_backend is not None:
        os.environ["FLASH_ATTENTION_BACKEND"] = env_backend
    for case, problem in sorted(failures, key=lambda item: item[0].number):
        print(f"FAIL case {case.number} ({case.label}): {problem}\n  args: {case.args}\n"
              f"  replay: python3 {sys.argv[0]} --cli {options.cli} --seed {options.seed} --only {case.number}")
    exits = ", ".join(f"{count} x {code}" for code, count in sorted(codes.items(), key=lambda item: str(item[0])))
    print(f"fuzz-cli: {len(cases) - len(failures)} of {len(cases)} cases held (seed {options.seed}; {summary}; "
          f"exit codes {exits})")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
