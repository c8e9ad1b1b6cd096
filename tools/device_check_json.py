#!/usr/bin/env python3
"""The JSON side of tools/device-check.sh, with Python's standard library only.

The script runs commands and records each step's status; this file turns what they left in the
work folder into the one JSON of figures, and checks it. It also makes the small inputs the steps
need (a tokenizer with a model-sized vocabulary, token ids, the CTest targets of the gpu tests).

  tokenizer --source DIR --vocab N --out DIR   a tokenizer.json whose vocabulary has N ids
  ids --model DIR --lengths 128,96 --seed S    one JSON list of ids per line, below the vocabulary
  gpu-targets --listing F --build-dir D --known F   what to build for the tests CTest listed
  assemble --work DIR --out FILE               the report (see SCHEMA below)
  validate FILE --mode cpu|gpu                 every required key there, numbers are numbers
  failed FILE                                  the sections that failed

SCHEMA (every section has "status": "ok", "skipped: why" or "failed: why"):
  versions   pedagogy, libtorch, torch, cuda, gpu, driver, transformers, python (strings)
  deps       prefix, debs: the Debian packages unpacked for the build
  build      build_dir, cuda_arch, seconds
  gpu_tests  passed, failed, skipped, total: the CTest tests labelled gpu
  logits     per family (qwen2, qwen3, llama): preset, vocab, tokens, ours_status,
             ours_bf16_vs_fp32_max_abs_diff, and from transformers on the same weights
             fp32_max_abs_diff, bf16_max_abs_diff, hf_bf16_vs_fp32_max_abs_diff, max_abs_logit
  generate   model, parameters_millions, dtype, prompt_tokens, new_tokens; engine and
             transformers {status, tokens_per_s: {concurrency: tokens/s}}; engine_vs_transformers
  learner    parameters_millions, tokens_per_s, precision, and where the peak is known
             mfu (6 x parameters x tokens/s / peak_flops), peak_flops, peak_source
  sync       per size ("0.5b", "7b"): parameters_millions, local_sync_s, local_gb_per_s,
             device_copy_gb_per_s, and on a GPU nccl_loopback_sync_s
"""

import argparse
import json
import math
import os
import random
import re
import struct
import sys
import time
import xml.etree.ElementTree as ElementTree
from array import array

SECTIONS = ["versions", "deps", "build", "gpu_tests", "logits", "generate", "learner", "sync"]
FAMILIES = ["qwen2", "qwen3", "llama"]
SYNC_SIZES = ["0.5b", "7b"]
# Sections that must be "ok" in a --cpu dry run (the rest need a GPU, a fresh build or
# transformers); within them, the parts named in validate().
CPU_REQUIRED = ["versions", "gpu_tests", "generate", "learner", "sync"]


# ---- inputs --------------------------------------------------------------------------------------


def make_tokenizer(source, vocab, out):
    """tokenizer.json of `source` with filler tokens up to `vocab` ids, so that init-model sizes
    the model's embedding and LM head like a released model's (the fillers are never produced by
    encoding, and decode to their own spelling)."""
    with open(os.path.join(source, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    used = set(tok["model"]["vocab"].values()) | {a["id"] for a in tok["added_tokens"]}
    for i in range(max(used) + 1, vocab):
        tok["model"]["vocab"][f"<fill_{i}>"] = i
    config = read_text(os.path.join(source, "tokenizer_config.json"))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f)
    if config is not None:
        with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            f.write(config)


def make_ids(model, lengths, seed):
    with open(os.path.join(model, "config.json"), encoding="utf-8") as f:
        vocab = json.load(f)["vocab_size"]
    rng = random.Random(seed)
    return [[rng.randrange(vocab) for _ in range(n)] for n in lengths]


def gpu_targets(listing, build_dir, known):
    """Build targets the tests in `listing` (`ctest -N --show-only=json-v1`) run: arguments of
    their add_test() in the build folder's CTestTestfile.cmake files (read there, since CTest
    lists no command for an executable not built yet) named like a target in `known` (the output
    of `cmake --build DIR --target help`)."""
    with open(listing, encoding="utf-8") as f:
        wanted = {test["name"] for test in json.load(f).get("tests", [])}
    with open(known, encoding="utf-8") as f:
        help_text = f.read()
    # Ninja prints "name: phony", Makefiles "... name".
    names = set(re.findall(r"^(?:\.\.\. )?([A-Za-z0-9_.+-]+)(?::|$)", help_text, re.M))
    targets = []
    for folder, _, files in os.walk(build_dir):
        if "CTestTestfile.cmake" not in files:
            continue
        with open(os.path.join(folder, "CTestTestfile.cmake"), encoding="utf-8") as f:
            for m in re.finditer(r"^add_test\(\[=\[(.+?)\]=\] (.*)\)$", f.read(), re.M):
                if m.group(1) not in wanted:
                    continue
                for argument in re.findall(r'"([^"]*)"', m.group(2)):
                    name = os.path.basename(argument)
                    if name in names and name not in targets:
                        targets.append(name)
    return targets


# ---- reading what the steps left -----------------------------------------------------------------


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def read_json(path):
    """The last line of `path` that is a JSON object (benches print one line), or None."""
    text = read_text(path)
    if not text:
        return None
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    try:
        value = json.loads(text)
        return value if isinstance(value, dict) else None
    except ValueError:
        return None


def read_steps(work):
    """steps.tsv: section<TAB>step<TAB>status<TAB>seconds, one line per step run or skipped."""
    steps = {}
    text = read_text(os.path.join(work, "steps.tsv")) or ""
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3:
            seconds = float(parts[3]) if len(parts) > 3 and parts[3] else 0.0
            steps[(parts[0], parts[1])] = {"status": parts[2], "seconds": seconds}
    return steps


def read_meta(work):
    """meta.txt: key=value lines the script wrote (sizes, paths, the peak it chose)."""
    meta = {}
    for line in (read_text(os.path.join(work, "meta.txt")) or "").splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            meta[key.strip()] = value.strip()
    return meta


def read_safetensors_f32(path):
    """{name: (shape, array('f'))} of a float32 safetensors file, read without numpy or torch."""
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        data = f.read()
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] != "F32":
            raise ValueError(f"{path}: {name} is {entry['dtype']}, not F32")
        begin, end = entry["data_offsets"]
        values = array("f")
        values.frombytes(data[begin:end])
        if sys.byteorder != "little":
            values.byteswap()
        out[name] = (entry["shape"], values)
    return out


def max_abs_diff_files(a, b):
    """Largest |a - b| over the tensors both files hold (same names and shapes required)."""
    first, second = read_safetensors_f32(a), read_safetensors_f32(b)
    if sorted(first) != sorted(second):
        raise ValueError(f"{a} and {b} hold different tensors")
    worst = 0.0
    for name, (shape, values) in first.items():
        other_shape, other = second[name]
        if shape != other_shape:
            raise ValueError(f"{name}: shape {shape} vs {other_shape}")
        worst = max(worst, max(abs(x - y) for x, y in zip(values, other)))
    return worst


# ---- the report ----------------------------------------------------------------------------------


def worst_status(statuses):
    """The first failure, else the first skip, else ok."""
    for prefix in ("failed", "skipped"):
        for status in statuses:
            if status.startswith(prefix):
                return status
    return "ok"


def step_status(steps, section, step):
    entry = steps.get((section, step))
    return entry["status"] if entry else "skipped: not run"


def number(value):
    """A finite float, or None (JSON has no NaN or infinity)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def parse_version_report(text):
    """`pedagogy --version`: a first line 'pedagogy X', then '  NAME  value' lines."""
    out = {}
    lines = (text or "").splitlines()
    if lines and lines[0].startswith("pedagogy"):
        out["pedagogy"] = lines[0].split(" ", 1)[-1].strip()
    for line in lines[1:]:
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            out[parts[0].lower()] = parts[1]
    return out


def versions_section(work, steps):
    python = read_json(os.path.join(work, "versions", "python.out")) or {}
    report = parse_version_report(read_text(os.path.join(work, "versions", "pedagogy.out")))
    smi = (read_text(os.path.join(work, "versions", "nvidia-smi.out")) or "").strip()
    gpu, driver = python.get("gpu", "none"), "none"
    if smi:
        fields = [x.strip() for x in smi.splitlines()[0].split(",")]
        if len(fields) >= 2:
            gpu, driver = fields[0], fields[1]
    section = {
        "status": worst_status(
            [step_status(steps, "versions", "python"), step_status(steps, "versions", "pedagogy")]
        ),
        "pedagogy": report.get("pedagogy", "unknown"),
        "libtorch": report.get("libtorch", "unknown"),
        "pedagogy_cuda": report.get("cuda", "not built with CUDA"),
        "nccl": report.get("nccl", "not built with NCCL"),
        "torch": python.get("torch", "unknown"),
        "cuda": python.get("cuda", "none"),
        "gpu": gpu,
        "driver": driver,
        "transformers": python.get("transformers", "unknown"),
        "python": python.get("python", "unknown"),
    }
    return section


def simple_section(steps, section, names, extra=None):
    out = {"status": worst_status([step_status(steps, section, n) for n in names])}
    out["seconds"] = round(sum(steps.get((section, n), {}).get("seconds", 0.0) for n in names), 1)
    out.update(extra or {})
    return out


def gpu_tests_section(work, steps):
    names = [name for section, name in steps if section == "gpu_tests"]
    out = simple_section(steps, "gpu_tests", names or ["ctest"])
    junit = os.path.join(work, "gpu_tests", "junit.xml")
    counts = {"passed": 0, "failed": 0, "skipped": 0, "total": 0}
    if os.path.exists(junit):
        try:
            for case in ElementTree.parse(junit).getroot().iter("testcase"):
                counts["total"] += 1
                status = case.get("status", "")
                if case.find("failure") is not None or case.find("error") is not None:
                    counts["failed"] += 1
                elif case.find("skipped") is not None or status in ("notrun", "disabled"):
                    counts["skipped"] += 1
                else:
                    counts["passed"] += 1
        except ElementTree.ParseError as e:
            out["status"] = f"failed: unreadable junit report: {e}"
    out.update(counts)
    if out["status"] == "ok" and counts["total"] == 0:
        out["status"] = "skipped: no test is labelled gpu"
    return out


def logits_family(work, steps, meta, family):
    folder = os.path.join(work, "logits", family)
    prefix = f"{family}/"
    ours = worst_status(
        [step_status(steps, "logits", prefix + s) for s in ("init", "ours_fp32", "ours_bf16")]
    )
    entry = {"preset": meta.get(f"logits.{family}.preset", "unknown"), "ours_status": ours}
    summary = read_json(os.path.join(folder, "ours_fp32.out")) or {}
    entry["vocab"] = summary.get("vocab")
    entry["tokens"] = summary.get("tokens")
    hf = read_json(os.path.join(folder, "hf.out")) or {}
    if ours == "ok":
        if "ours_bf16_vs_fp32_max_abs_diff" in hf:
            entry["ours_bf16_vs_fp32_max_abs_diff"] = number(hf["ours_bf16_vs_fp32_max_abs_diff"])
        else:  # small sizes only: this walks every value in Python
            try:
                entry["ours_bf16_vs_fp32_max_abs_diff"] = max_abs_diff_files(
                    os.path.join(folder, "ours_fp32.safetensors"),
                    os.path.join(folder, "ours_bf16.safetensors"),
                )
            except (OSError, ValueError) as e:
                ours = entry["ours_status"] = f"failed: reading our logits: {e}"
    compare = step_status(steps, "logits", prefix + "hf")
    if compare == "ok":
        for key in (
            "fp32_max_abs_diff",
            "bf16_max_abs_diff",
            "hf_bf16_vs_fp32_max_abs_diff",
            "fp32_mean_abs_diff",
            "bf16_mean_abs_diff",
            "max_abs_logit",
            "fp32_argmax_agreement",
            "bf16_argmax_agreement",
        ):
            if key in hf:
                entry[key] = number(hf[key])
    entry["status"] = ours if ours != "ok" else compare
    return entry


def logits_section(work, steps, meta):
    section = {}
    for family in FAMILIES:
        section[family] = logits_family(work, steps, meta, family)
    statuses = [section[f]["status"] for f in FAMILIES]
    status = worst_status(statuses)
    if status != "ok":
        failing = next(f for f in FAMILIES if section[f]["status"] == status)
        kind, why = status.split(": ", 1) if ": " in status else (status, "")
        status = f"{kind}: {failing}: {why}"
    return {"status": status, **section}


def rates(figures, key_prefix):
    """{"1": x, "64": y, ...} from a bench's "<prefix>1", "<prefix>64" figures, by concurrency."""
    found = {}
    for key, value in (figures or {}).items():
        if key.startswith(key_prefix) and key[len(key_prefix) :].isdigit():
            found[int(key[len(key_prefix) :])] = number(value)
    return {str(c): found[c] for c in sorted(found)}


def generate_section(work, steps, meta):
    folder = os.path.join(work, "generate")
    engine_status = worst_status(
        [step_status(steps, "generate", "init"), step_status(steps, "generate", "engine")]
    )
    engine = read_json(os.path.join(folder, "engine.out")) or {}
    hf = read_json(os.path.join(folder, "transformers.out")) or {}
    section = {
        "status": engine_status,
        "model": meta.get("generate.preset", "unknown"),
        "parameters_millions": number(engine.get("parameters_millions")),
        "dtype": meta.get("generate.dtype", "unknown"),
        "prompt_tokens": int(meta.get("generate.prompt_tokens", 0)),
        "new_tokens": int(meta.get("generate.new_tokens", 0)),
        "engine": {
            "status": engine_status,
            "tokens_per_s": rates(engine, "tokens_per_s_concurrency_"),
        },
        "transformers": {
            "status": step_status(steps, "generate", "transformers"),
            "tokens_per_s": rates(hf, "tokens_per_s_concurrency_"),
        },
    }
    if section["transformers"]["status"] != "ok":
        section["transformers"]["tokens_per_s"] = {}
    ratio = {}
    for c, ours in section["engine"]["tokens_per_s"].items():
        theirs = section["transformers"]["tokens_per_s"].get(c)
        if ours and theirs:
            ratio[c] = ours / theirs
    section["engine_vs_transformers"] = ratio
    return section


def learner_section(work, steps, meta):
    status = step_status(steps, "learner", "bench")
    figures = read_json(os.path.join(work, "learner", "bench.out")) or {}
    section = {
        "status": status,
        "preset": meta.get("learner.preset", "unknown"),
        "precision": meta.get("learner.precision", "unknown"),
        "sequences": int(meta.get("learner.sequences", 0)),
        "length": int(meta.get("learner.length", 0)),
        "parameters_millions": number(figures.get("parameters_millions")),
        "tokens_per_s": number(figures.get("learner_tokens_per_s")),
        "trained_tokens_per_s": number(figures.get("learner_trained_tokens_per_s")),
        "seconds": number(figures.get("learner_seconds")),
        "peak_flops": peak_flops(meta.get("peak_flops")),
        "peak_source": meta.get("peak_source", "unknown"),
    }
    if "device_memory_mb" in figures:
        section["device_memory_mb"] = number(figures["device_memory_mb"])
    n, rate, peak = section["parameters_millions"], section["tokens_per_s"], section["peak_flops"]
    if status == "ok" and (n is None or rate is None):
        section["status"] = "failed: the bench gave no parameters_millions or learner_tokens_per_s"
    elif status == "ok" and peak is None:
        section["mfu_status"] = f"skipped: no peak FLOP/s ({section['peak_source']})"
    elif status == "ok":
        section["mfu"] = 6 * n * 1e6 * rate / peak
        section["mfu_status"] = "ok"
    return section


def peak_flops(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def sync_section(work, steps, meta):
    section = {}
    for size in SYNC_SIZES:
        status = step_status(steps, "sync", size)
        figures = read_json(os.path.join(work, "sync", f"{size}.out")) or {}
        entry = {"status": status, "dtype": meta.get("sync.dtype", "unknown")}
        if status == "ok":
            for key in (
                "parameters_millions",
                "bytes_gb",
                "local_sync_s",
                "local_gb_per_s",
                "device_copy_gb_per_s",
                "nccl_loopback_sync_s",
                "nccl_loopback_gb_per_s",
                "device_memory_mb",
            ):
                if key in figures:
                    entry[key] = number(figures[key])
        section[size] = entry
    return {"status": worst_status([section[s]["status"] for s in SYNC_SIZES]), **section}


def assemble(work, mode, started):
    steps = read_steps(work)
    meta = read_meta(work)
    report = {
        "schema": "pedagogy-device-check/1",
        "mode": mode,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.time() - started, 1) if started else None,
        "budget_s": int(meta.get("budget_s", 0)),
        "work_dir": os.path.abspath(work),
        "device": meta.get("device", "unknown"),
        "versions": versions_section(work, steps),
        "deps": simple_section(
            steps,
            "deps",
            ["unpack"],
            {"prefix": meta.get("deps.prefix", ""), "debs": int(meta.get("deps.count", 0))},
        ),
        "build": simple_section(
            steps,
            "build",
            ["configure", "build"],
            {"build_dir": meta.get("build_dir", ""), "cuda_arch": meta.get("cuda_arch", "none")},
        ),
        "gpu_tests": gpu_tests_section(work, steps),
        "logits": logits_section(work, steps, meta),
        "generate": generate_section(work, steps, meta),
        "learner": learner_section(work, steps, meta),
        "sync": sync_section(work, steps, meta),
    }
    return report


# ---- validation ----------------------------------------------------------------------------------


def validate(report, mode):
    """Problems with the report, as sentences (empty: valid)."""
    problems = []

    def need_number(where, obj, key):
        value = obj.get(key) if isinstance(obj, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{where}.{key} is {value!r}, not a number")
        elif not math.isfinite(value):
            problems.append(f"{where}.{key} is not finite")

    def check_status(where, obj):
        status = obj.get("status") if isinstance(obj, dict) else None
        if not isinstance(status, str) or not (
            status == "ok"
            or (status.startswith("skipped: ") and len(status) > 9)
            or (status.startswith("failed: ") and len(status) > 8)
        ):
            problems.append(f"{where}.status is {status!r}: not ok / skipped: why / failed: why")
            return None
        return status

    for key in ("schema", "mode", "created", "work_dir", "device"):
        if not isinstance(report.get(key), str):
            problems.append(f"{key} is missing or not a string")
    need_number("report", report, "seconds")
    for name in SECTIONS:
        if not isinstance(report.get(name), dict):
            problems.append(f"section {name} is missing")
            continue
        check_status(name, report[name])
    if problems:
        return problems

    def ok(obj):
        return obj.get("status") == "ok"

    versions = report["versions"]
    for key in ("pedagogy", "libtorch", "torch", "cuda", "gpu", "driver", "transformers"):
        if not isinstance(versions.get(key), str):
            problems.append(f"versions.{key} is not a string")
    if ok(report["gpu_tests"]):
        for key in ("passed", "failed", "skipped", "total"):
            need_number("gpu_tests", report["gpu_tests"], key)
    for family in FAMILIES:
        entry = report["logits"].get(family)
        if not isinstance(entry, dict):
            problems.append(f"logits.{family} is missing")
            continue
        check_status(f"logits.{family}", entry)
        if entry.get("ours_status") == "ok":
            for key in ("vocab", "tokens", "ours_bf16_vs_fp32_max_abs_diff"):
                need_number(f"logits.{family}", entry, key)
        if ok(entry):
            for key in ("fp32_max_abs_diff", "bf16_max_abs_diff", "hf_bf16_vs_fp32_max_abs_diff"):
                need_number(f"logits.{family}", entry, key)
    generate = report["generate"]
    for part in ("engine", "transformers"):
        if not isinstance(generate.get(part), dict):
            problems.append(f"generate.{part} is missing")
            continue
        check_status(f"generate.{part}", generate[part])
        if ok(generate[part]):
            rates_ = generate[part].get("tokens_per_s")
            if not isinstance(rates_, dict) or not rates_:
                problems.append(f"generate.{part}.tokens_per_s is empty")
            else:
                for c in rates_:
                    need_number(f"generate.{part}.tokens_per_s", rates_, c)
    if ok(generate):
        need_number("generate", generate, "parameters_millions")
    if ok(report["learner"]):
        for key in ("parameters_millions", "tokens_per_s"):
            need_number("learner", report["learner"], key)
        if report["learner"].get("peak_flops") is not None:
            for key in ("mfu", "peak_flops"):
                need_number("learner", report["learner"], key)
    for size in SYNC_SIZES:
        entry = report["sync"].get(size)
        if not isinstance(entry, dict):
            problems.append(f"sync.{size} is missing")
            continue
        check_status(f"sync.{size}", entry)
        if ok(entry):
            for key in ("parameters_millions", "local_sync_s", "local_gb_per_s"):
                need_number(f"sync.{size}", entry, key)

    if mode == "cpu":  # what a dry run must have run, not merely reported
        for name in CPU_REQUIRED:
            if not ok(report[name]):
                problems.append(f"{name} is {report[name]['status']!r} in a --cpu run")
        for family in FAMILIES:
            entry = report["logits"].get(family, {})
            if entry.get("ours_status") != "ok":
                problems.append(f"logits.{family}.ours_status is {entry.get('ours_status')!r}")
    return problems


# ---- command line --------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("tokenizer")
    p.add_argument("--source", required=True)
    p.add_argument("--vocab", type=int, required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("ids")
    p.add_argument("--model", required=True)
    p.add_argument("--lengths", required=True)
    p.add_argument("--seed", type=int, default=1)
    p = sub.add_parser("gpu-targets")
    p.add_argument("--listing", required=True)
    p.add_argument("--build-dir", required=True)
    p.add_argument("--known", required=True)
    p = sub.add_parser("assemble")
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--mode", choices=["cpu", "gpu"], required=True)
    p.add_argument("--started", type=float, default=0.0)
    p = sub.add_parser("failed")
    p.add_argument("file")
    p = sub.add_parser("validate")
    p.add_argument("file")
    p.add_argument("--mode", choices=["cpu", "gpu"], required=True)
    args = parser.parse_args()

    if args.command == "tokenizer":
        make_tokenizer(args.source, args.vocab, args.out)
    elif args.command == "ids":
        lengths = [int(x) for x in args.lengths.split(",")]
        for ids in make_ids(args.model, lengths, args.seed):
            print(json.dumps(ids))
    elif args.command == "gpu-targets":
        print(" ".join(gpu_targets(args.listing, args.build_dir, args.known)))
    elif args.command == "assemble":
        report = assemble(args.work, args.mode, args.started)
        text = json.dumps(report, indent=2, allow_nan=False) + "\n"
        tmp = args.out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, args.out)
    elif args.command == "failed":
        with open(args.file, encoding="utf-8") as f:
            report = json.load(f)
        print(" ".join(k for k in SECTIONS if report[k]["status"].startswith("failed")))
    elif args.command == "validate":
        try:
            with open(args.file, encoding="utf-8") as f:
                report = json.load(f)
        except (OSError, ValueError) as e:
            print(f"device-check: {args.file}: not readable JSON: {e}", file=sys.stderr)
            return 1
        problems = validate(report, args.mode)
        for problem in problems:
            print(f"device-check: {args.file}: {problem}", file=sys.stderr)
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
