#!/usr/bin/env python3
# Old/new from `alternate NAME` steps (scripts/device-steps.sh): per case the two old and two new
# medians and new/old of their medians; then feature/plain within each binary.
#   scripts/ab-summary.py NAME [DIR]
import json,glob,sys,statistics as st,collections
name=sys.argv[1]; d=sys.argv[2] if len(sys.argv)>2 else '.'
runs=collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(f'{d}/{name}-*-*.json')):
    which=f.split('/')[-1].split('-')[-2]
    for r in json.load(open(f))['records']:
        if r['status']!='ok': continue
        k=(r['impl'],r['pass'],r['head_dim'],r['seqlen_q'],r['causal'])
        runs[k][which].append(r['median_ms'])
print(f"{'impl':12s} {'pass':9s} d    N     causal  old ms (2)        new ms (2)       new/old")
for k,v in sorted(runs.items()):
    o=v['old']; n=v['new']
    if not o or not n: continue
    print(f"{k[0]:12s} {k[1]:9s} {k[2]:<4d} {k[3]:<5d} {str(k[4]):6s} {min(o):.4f}-{max(o):.4f}   {min(n):.4f}-{max(n):.4f}   {st.median(n)/st.median(o):.3f}")
# feature/plain ratios within new
print()
for which in ['old','new']:
  for k,v in sorted(runs.items()):
    if k[0]=='flash': continue
    base=(('flash',)+k[1:])
    if base in runs and runs[base][which]:
        print(which, k, f"{st.median(v[which])/st.median(runs[base][which]):.3f}")
