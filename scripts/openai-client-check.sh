#!/usr/bin/env bash
# Drives `arbitrage serve` (smoke model) with the official Python `openai` package: models list,
# chat non-streamed and streamed (the pieces must add up to the same text for the same seed), the
# `arbitrage` extension through extra_body, the completions API, and an error the SDK must raise
# as BadRequestError. The package goes into a virtual environment this script creates.
#
#     scripts/openai-client-check.sh [--venv DIR]      (default: a temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."

venv=""
if [[ "${1:-}" == "--venv" ]]; then
    venv="$2"
fi
tmp="$(mktemp -d)"
venv="${venv:-$tmp/venv}"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check openai
echo "openai $("$venv/bin/python" -c 'import openai; print(openai.__version__)')" >&2

cargo build --release --quiet
target/release/arbitrage serve --config configs/smoke.toml --port 0 2>"$tmp/server.log" &
server_pid=$!
for _ in $(seq 600); do
    grep -q "listening on http://" "$tmp/server.log" && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log" >&2; exit 1; }
    sleep 0.1
done
url="$(grep -o 'http://[0-9.:]*' "$tmp/server.log" | head -1)/v1"
echo "server at $url" >&2

"$venv/bin/python" - "$url" <<'PY'
import sys

import openai

client = openai.OpenAI(base_url=sys.argv[1], api_key="unused")
model = client.models.list().data[0].id
question = [{"role": "user", "content": "Tom has 3 apples and buys 4 more. How many apples does he have?"}]
params = dict(model=model, messages=question, temperature=0.7, seed=11, max_tokens=96)

whole = client.chat.completions.create(**params, extra_body={"arbitrage": {"run_type": "rsd", "threshold": 0.5}})
text = whole.choices[0].message.content
ext = whole.model_extra["arbitrage"]
assert text and ext["run_type"] == "rsd", whole
assert "".join(s["text"] for s in ext["steps"]) == text
assert whole.usage.completion_tokens == sum(s["tokens"] for s in ext["steps"])
print(f"chat: {len(ext['steps'])} steps, target fraction {ext['target_step_fraction']:.2f}, "
      f"finish {whole.choices[0].finish_reason}")

stream = client.chat.completions.create(
    **params, stream=True, stream_options={"include_usage": True},
    extra_body={"arbitrage": {"run_type": "rsd", "threshold": 0.5}})
pieces, authors, usage = [], [], None
for chunk in stream:
    if chunk.usage:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
    step = (chunk.model_extra or {}).get("arbitrage", {})
    if "step" in step:
        authors.append(step["model"])
assert "".join(pieces) == text, ("streamed text differs", "".join(pieces), text)
assert authors == [s["model"] for s in ext["steps"]]
assert usage and usage.completion_tokens == whole.usage.completion_tokens
print(f"stream: {len(pieces)} pieces add up to the same text; usage {usage.completion_tokens} tokens")

completion = client.completions.create(model=model, prompt="1, 2, 3, 4,", max_tokens=24,
                                       extra_body={"arbitrage": {"run_type": "draft"}})
assert completion.choices[0].text
streamed = "".join(c.choices[0].text for c in client.completions.create(
    model=model, prompt="1, 2, 3, 4,", max_tokens=24, stream=True,
    extra_body={"arbitrage": {"run_type": "draft"}}) if c.choices)
assert streamed == completion.choices[0].text
print(f"completions: {completion.choices[0].text!r}, streamed alike")

try:
    client.chat.completions.create(model=model, messages=[{"role": "narrator", "content": "hi"}])
    raise SystemExit("an unknown role was accepted")
except openai.BadRequestError as e:
    assert e.body["param"] == "messages[0].role", e.body
    print(f"bad input: BadRequestError {e.status_code}: {e.body['message']}")
print("openai client check passed")
PY
