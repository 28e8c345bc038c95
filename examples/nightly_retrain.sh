#!/usr/bin/env bash
# Nightly retraining: today's dump -> a new model published in MODELS/current.
#
#   examples/nightly_retrain.sh DUMP MODELS [extra `sessionrec fit` options...]
#
# The first run trains from scratch; later runs warm-start from the model in
# MODELS/current (kept items keep their embeddings, new items are added). `fit` builds
# the new model beside MODELS/current and publishes it in one commit, so a failed or
# killed run leaves yesterday's model in place and serving; its exit code is not 0 and
# the error is in the log. Each run's summary (metrics, items added, timings) goes to
# MODELS/fit-YYYY-MM-DD.json. A crontab entry (02:15 every night, one run at a time):
#
#   15 2 * * * flock -n /tmp/sessionrec-fit.lock /srv/reco/examples/nightly_retrain.sh \
#       /data/clicks/latest.parquet /srv/reco/models --shard-clicks 2000000 \
#       >> /var/log/sessionrec-fit.log 2>&1
#
# Services that load MODELS/current/model.onnx pick the new model up on their next
# (re)load; SessionRecommender.load verifies it against its manifest.
set -euo pipefail

if [ "$#" -lt 2 ]; then
    echo "usage: $0 DUMP MODELS [sessionrec fit options...]" >&2
    exit 2
fi
dump=$1
models=$2
shift 2
mkdir -p "$models"

warm=()
if [ -f "$models/current/manifest.json" ]; then
    warm=(--warm-start "$models/current")
fi

echo "$(date -u +%FT%TZ) retraining from $dump ${warm[*]:-(from scratch)}" >&2
sessionrec fit --clicks "$dump" --out "$models/current" "${warm[@]}" --quiet --json "$@" \
    > "$models/fit-$(date -u +%F).json"
echo "$(date -u +%FT%TZ) published $models/current" >&2
