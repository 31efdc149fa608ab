#!/usr/bin/env python3
"""Exports the value-head PRM as a model vLLM serves for rewards.

    python scripts/export_value_head_prm.py /work/vllm/hf/target prms/value-head.json /work/vllm/hf/prm

The embedded value-head PRM (prms/value-head.json) is a logistic head on the target's final
hidden state (after the last RMSNorm) at a step's last token:
p = sigmoid(sum_i (h_i - mean_i) / scale_i * w_i + bias). Skywork's PRM, which the paper serves,
is the same shape: a language model with a value head. vLLM's reward runner accepts
`Qwen2ForRewardModel` (Qwen2.5-Math-RM's architecture), whose score layer is
Linear(hidden, hidden) -> ReLU -> Linear(hidden, 1), both with biases, run in float32. A linear
head fits in it exactly: with z = w'.h + b' (the standardisation folded in, w' = w / scale,
b' = bias - sum(w' * mean)), the first layer's rows 0 and 1 compute z and -z, the second layer
takes relu(z) - relu(-z) = z. So `/pooling` answers the head's logit z at every token (vLLM 0.32
returns logits for `token_classify` unless a request sets `use_activation`); the client
(`--prm-api reward`) reads the last token's and applies the sigmoid. `problem_type =
multi_label_classification` makes the activation, when a request asks for it, a per-token
sigmoid, so other clients get the head's probability with `use_activation: true`.

The input folder is the target converted by scripts/gguf_to_hf.py: the head was trained on the
GGUF model's states, and the converted weights are that model dequantised.
"""

import argparse
import json
import os
import shutil
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target", help="the target in Hugging Face form (scripts/gguf_to_hf.py)")
    ap.add_argument("head", help="the value head (arbitrage train-heads), reads: target-hidden")
    ap.add_argument("out", help="output directory (created)")
    args = ap.parse_args()

    import torch
    from safetensors.torch import load_file, save_file

    head = json.load(open(args.head))
    if head.get("format") != "arbitrage-linear-head" or head.get("reads") != "target-hidden":
        print(f"export: {args.head} is not a target-hidden linear head", file=sys.stderr)
        return 1
    config = json.load(open(os.path.join(args.target, "config.json")))
    dim = head["dim"]
    if config["hidden_size"] != dim:
        print(f"export: head dim {dim} != hidden_size {config['hidden_size']}", file=sys.stderr)
        return 1

    w = torch.tensor(head["weights"], dtype=torch.float64)
    mean = torch.tensor(head["mean"], dtype=torch.float64)
    scale = torch.tensor(head["scale"], dtype=torch.float64)
    w_folded = w / scale
    b_folded = head["bias"] - float((w_folded * mean).sum())
    w1 = torch.zeros(dim, dim, dtype=torch.float64)
    b1 = torch.zeros(dim, dtype=torch.float64)
    w1[0], b1[0] = w_folded, b_folded
    w1[1], b1[1] = -w_folded, -b_folded
    w2 = torch.zeros(1, dim, dtype=torch.float64)
    w2[0, 0], w2[0, 1] = 1.0, -1.0
    b2 = torch.zeros(1, dtype=torch.float64)

    os.makedirs(args.out, exist_ok=True)
    tensors = {}
    for name in sorted(os.listdir(args.target)):
        if name.endswith(".safetensors"):
            tensors.update(load_file(os.path.join(args.target, name)))
    tensors.pop("lm_head.weight", None)
    for key, t in {"score.0.weight": w1, "score.0.bias": b1,
                   "score.2.weight": w2, "score.2.bias": b2}.items():
        tensors[key] = t.to(torch.float32).contiguous()
    save_file(tensors, os.path.join(args.out, "model.safetensors"), metadata={"format": "pt"})

    config["architectures"] = ["Qwen2ForRewardModel"]
    config["num_labels"] = 1
    config["problem_type"] = "multi_label_classification"
    config["arbitrage_value_head"] = {
        "head": os.path.basename(args.head),
        "trained_on": head.get("model"),
    }
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for name in os.listdir(args.target):
        if name.startswith("tokenizer") or name in ("generation_config.json", "special_tokens_map.json",
                                                    "vocab.json", "merges.txt", "chat_template.jinja"):
            shutil.copy(os.path.join(args.target, name), args.out)
    print(f"export: {args.out}: Qwen2ForRewardModel, value head folded (b' = {b_folded:.4f})",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
