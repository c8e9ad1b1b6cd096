#!/usr/bin/env python3
"""The Hugging Face side of tools/device-check.sh: transformers on the same weights as ours.

  versions                          torch, CUDA, GPU and transformers versions as one JSON line
                                    (works without torch or transformers: it says why)
  logits --model DIR --ids FILE --ours-fp32 F --ours-bf16 F --device D
                                    our logits (`pedagogy logits`) against transformers' forward
                                    on the same ids, in float32 and bfloat16
  generate --model DIR --device D --dtype T --concurrency 1,64,256 --prompt-tokens P --new-tokens N
                                    transformers' generate on the prompts `pedagogy bench
                                    generate` uses: output tokens/s per concurrency

The model directory is the one `pedagogy init-model` wrote (config.json, model.safetensors), read
with from_pretrained, so both sides hold the same weights. Nothing is downloaded.
"""

import argparse
import json
import platform
import sys
import time


def versions():
    out = {"python": platform.python_version()}
    try:
        import torch
    except Exception as e:  # noqa: BLE001  (any import failure is the answer)
        out.update(torch=f"not importable: {e}", cuda="none", gpu="none")
    else:
        out["torch"] = torch.__version__
        out["cuda"] = torch.version.cuda or "none"
        out["cxx11_abi"] = str(bool(torch._C._GLIBCXX_USE_CXX11_ABI))
        out["cmake_prefix_path"] = torch.utils.cmake_prefix_path
        if torch.cuda.is_available():
            out["gpu"] = torch.cuda.get_device_name(0)
            major, minor = torch.cuda.get_device_capability(0)
            out["capability"] = f"{major}.{minor}"
        else:
            out["gpu"] = "none"
    try:
        import transformers
    except Exception as e:  # noqa: BLE001
        out["transformers"] = f"not importable: {e}"
    else:
        out["transformers"] = transformers.__version__
    return out


def load_ours(path, torch):
    """The logits.i tensors of a `pedagogy logits` file, in line order."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
        data = bytearray(f.read())
    out = []
    for i in range(len(header) - ("__metadata__" in header)):
        entry = header[f"logits.{i}"]
        begin, end = entry["data_offsets"]
        values = torch.frombuffer(data, dtype=torch.float32, count=(end - begin) // 4, offset=begin)
        out.append(values.reshape(entry["shape"]))
    return out


def hf_model(model_dir, dtype, device):
    import transformers

    # transformers 4.56 renamed from_pretrained's torch_dtype to dtype (the old name warns, and
    # may go); an older one would take an unknown dtype= for a config attribute.
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    key = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, **{key: dtype})
    return model.to(device).eval()


def logits(args):
    import torch

    device = torch.device(args.device)
    ids = [json.loads(line) for line in open(args.ids, encoding="utf-8") if line.strip()]
    ours = {
        "fp32": load_ours(args.ours_fp32, torch),
        "bf16": load_ours(args.ours_bf16, torch),
    }
    theirs = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        model = hf_model(args.model, dtype, device)
        with torch.no_grad():
            theirs[name] = [
                model(torch.tensor([row], device=device)).logits[0].float().cpu() for row in ids
            ]
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()

    def compare(a, b):
        worst, total, count, agree = 0.0, 0.0, 0, 0
        for x, y in zip(a, b):
            if x.shape != y.shape:
                raise SystemExit(f"shape {tuple(x.shape)} vs {tuple(y.shape)}")
            d = (x - y).abs()
            worst = max(worst, d.max().item())
            total += d.sum().item()
            count += d.numel()
            agree += (x.argmax(-1) == y.argmax(-1)).sum().item()
        return worst, total / count, agree / sum(x.shape[0] for x in a)

    fp32 = compare(ours["fp32"], theirs["fp32"])
    bf16 = compare(ours["bf16"], theirs["bf16"])
    out = {
        "fp32_max_abs_diff": fp32[0],
        "fp32_mean_abs_diff": fp32[1],
        "fp32_argmax_agreement": fp32[2],
        "bf16_max_abs_diff": bf16[0],
        "bf16_mean_abs_diff": bf16[1],
        "bf16_argmax_agreement": bf16[2],
        # The scale of bfloat16's own rounding on this model: transformers against itself.
        "hf_bf16_vs_fp32_max_abs_diff": compare(theirs["bf16"], theirs["fp32"])[0],
        "ours_bf16_vs_fp32_max_abs_diff": compare(ours["bf16"], ours["fp32"])[0],
        "max_abs_logit": max(x.abs().max().item() for x in theirs["fp32"]),
        "sequences": len(ids),
        "tokens": sum(len(row) for row in ids),
    }
    print(json.dumps(out))


def text_tokens(length, salt):
    """The prompts of bench/generate_bench.cpp (text_tokens there), id for id."""
    return [32 + (i * 7 + salt * 13) % 90 for i in range(length)]


def generate(args):
    import torch

    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.dtype == "bfloat16" else torch.float32
    model = hf_model(args.model, dtype, device)
    # As our bench: sample at temperature 1 from the full distribution, never stop early.
    config = model.generation_config
    config.eos_token_id = None
    config.pad_token_id = 0
    options = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0)

    def run(prompts, new_tokens):
        batch = torch.tensor(prompts, device=device)
        mask = torch.ones_like(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.no_grad():
            out = model.generate(
                batch,
                attention_mask=mask,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                **options,
            )
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        return (out.shape[1] - batch.shape[1]) * out.shape[0], seconds

    run([text_tokens(args.prompt_tokens, 0)], 4)  # warm-up: kernels, allocator, cuBLAS
    figures = {}
    for c in [int(x) for x in args.concurrency.split(",")]:
        torch.manual_seed(c)
        generated, seconds = run([text_tokens(args.prompt_tokens, i) for i in range(c)],
                                 args.new_tokens)
        figures[f"tokens_per_s_concurrency_{c}"] = generated / seconds
    figures["parameters_millions"] = sum(p.numel() for p in model.parameters()) / 1e6
    print(json.dumps(figures))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("versions")
    p = sub.add_parser("logits")
    p.add_argument("--model", required=True)
    p.add_argument("--ids", required=True)
    p.add_argument("--ours-fp32", required=True)
    p.add_argument("--ours-bf16", required=True)
    p.add_argument("--device", default="cuda")
    p = sub.add_parser("generate")
    p.add_argument("--model", required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="bfloat16")
    p.add_argument("--concurrency", default="1,64,256")
    p.add_argument("--prompt-tokens", type=int, default=32)
    p.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()
    if args.command == "versions":
        print(json.dumps(versions()))
    elif args.command == "logits":
        logits(args)
    elif args.command == "generate":
        generate(args)


if __name__ == "__main__":
    main()
