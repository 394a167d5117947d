#!/usr/bin/env bash
# The dataset catalogue: one command per environment trains an online policy (IPPO), then
# records the good / medium / poor / replay tiers from its checkpoints into
# <out>/<env>/{good,medium,poor,replay} (plus <out>/<env>/all with a tier label per episode,
# <out>/<env>/plots with return histograms and violins, <out>/<env>/catalogue.json with the
# statistics). Each command fails (exit 1) unless good > medium > poor in mean return, and
# resumes where it stopped when re-run (training and every recording).
#
#   bash examples/offline/make_catalogue.sh [OUT] [EPISODES] [--small]
#
# Full settings take hours on a few CPU cores (rware: 3-4M training steps); --small trains
# for minutes (lbf-8x8-2p-2f-coop: about 5 minutes on 2 loaded cores, 600k steps; rware and
# smax-3m: 1M steps, rware-tiny-2ag 4M, 10-20 minutes each on 2 loaded cores).
set -euo pipefail
OUT=${1:-data}
EPISODES=${2:-1000}
SMALL=${3:-}

python -m jaxmarl_envs.algorithms.datasets.catalogue --env lbf-8x8-2p-2f-coop --out "$OUT" --episodes "$EPISODES" $SMALL
python -m jaxmarl_envs.algorithms.datasets.catalogue --env rware-tiny-2ag --out "$OUT" --episodes "$EPISODES" $SMALL
python -m jaxmarl_envs.algorithms.datasets.catalogue --env rware-tiny-4ag --out "$OUT" --episodes "$EPISODES" $SMALL
python -m jaxmarl_envs.algorithms.datasets.catalogue --env mpe-simple_spread-continuous --out "$OUT" --episodes "$EPISODES" $SMALL
python -m jaxmarl_envs.algorithms.datasets.catalogue --env smax-3m --out "$OUT" --episodes "$EPISODES" $SMALL

jaxmarl dataset list "$OUT"
