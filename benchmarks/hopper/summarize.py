"""Ratio table and geometric mean (ours / cuDNN) from a run.py result JSON with a grid bench."""
import json, math, sys

r = json.load(open(sys.argv[1]))
rows, logs = [], []
for b in r["bench"]:
    # Our kernels are every timed label that is not a peer ("t..." two-consumer, "w3..."
    # three-consumer tiles); a label starting with "o" is an A/B baseline, not part of the grid.
    peers = {"cudnn", "fa2", "cudnn_again", "fa2_again"}
    ours = [v for k, v in b.items() if k not in peers and not k.startswith("o") and isinstance(v, float)]
    # A/B entries (a baseline "o..." kernel beside ours) are not part of the grid.
    if not ours or not b.get("cudnn") or any(k.startswith("o") for k in b):
        continue
    cud = (b["cudnn"] + b.get("cudnn_again", b["cudnn"])) / 2
    ratio = max(ours) / cud
    logs.append(math.log(ratio))
    rows.append(f"| {b['d']} | {b['n']} | {'yes' if b['causal'] else 'no'} | {max(ours):.0f} | {cud:.0f} | {b['fa2']:.0f} | {ratio:.2f} |")
print("| d | N | causal | ours | cuDNN (mean of 2) | FA2 | ours/cuDNN |\n|---|---|---|---|---|---|---|")
print("\n".join(rows))
print(f"\ngeometric mean ours/cuDNN over {len(logs)} points: {math.exp(sum(logs) / len(logs)):.3f}")
