#!/usr/bin/env python3
"""How far two runs' greedy solutions agree, token by token: for each problem in both
results.jsonl files, the solution text (the steps joined) is tokenised with the model's
tokenizer and the common prefix counted. Used to check that the GGUF target converted for vLLM
(scripts/gguf_to_hf.py) continues a prompt greedily as the GGUF model does.

    /work/vllm/venv/bin/python scripts/vllm-cpu-greedy-check.py /work/vllm/hf/target/tokenizer.json \\
        target/vllm-cpu/embedded/target/results.jsonl target/vllm-cpu/vllm/target/results.jsonl
"""

import json
import sys

from tokenizers import Tokenizer


def solutions(path):
    out = {}
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            out[r["idx"]] = "".join(s["text"] for s in r["steps"])
    return out


def main() -> int:
    tok = Tokenizer.from_file(sys.argv[1])
    a, b = solutions(sys.argv[2]), solutions(sys.argv[3])
    common = sorted(set(a) & set(b))
    print("| idx | tokens (first run) | tokens (second run) | common prefix tokens | identical |")
    print("|---|---|---|---|---|")
    prefixes = []
    for i in common:
        ta = tok.encode(a[i], add_special_tokens=False).ids
        tb = tok.encode(b[i], add_special_tokens=False).ids
        n = 0
        while n < min(len(ta), len(tb)) and ta[n] == tb[n]:
            n += 1
        prefixes.append(n)
        print(f"| {i} | {len(ta)} | {len(tb)} | {n} | {'yes' if a[i] == b[i] else 'no'} |")
    if prefixes:
        s = sorted(prefixes)
        print(f"\nmedian common prefix {s[len(s) // 2]} tokens, minimum {s[0]}, "
              f"identical solutions {sum(a[i] == b[i] for i in common)} of {len(common)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
