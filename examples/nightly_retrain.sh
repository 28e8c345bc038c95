#!/usr/bin/env bash
# Nightly retraining: today's dump -> a new model published in MODELS/current.
#
#   examples/nightly_retrain.sh DUMP MODELS [extra `sessionrec fit` options...]
#
# Every run passes --warm-start MODELS/current --warm-start-missing cold: the first night,
# when MODELS/current does not exist yet, trains from scratch; every later night
# warm-starts from the model it replaces (kept items keep their embeddings, new items are
# added). `fit` builds the new model beside MODELS/current and publishes it in one commit,
# and only if it is not worse than the published model on today's test samples both can
# read (the publication guard: HR@20 + MRR@20 within 2 points; README, `sessionrec fit`).
# A failed or killed run leaves yesterday's model in place and serving; its exit code is
# not 0 and the error is in the log. Exit code 3: the guard kept yesterday's model and the
# new one waits in MODELS/current.rejected/ (its report.json says why; publish it by hand
# with `--publish always` if it is right). Each run's summary (metrics, items added, the
# guard's comparison, timings) goes to MODELS/fit-YYYY-MM-DDTHHMMSSZ.json (UTC; a second
# run on the same day keeps the first one's). A crontab entry (02:15
# every night, one run at a time):
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

echo "$(date -u +%FT%TZ) retraining from $dump" >&2
status=0
sessionrec fit --clicks "$dump" --out "$models/current" \
    --warm-start "$models/current" --warm-start-missing cold --quiet --json "$@" \
    > "$models/fit-$(date -u +%Y-%m-%dT%H%M%SZ).json" || status=$?
case $status in
    0) echo "$(date -u +%FT%TZ) published $models/current" >&2 ;;
    3) echo "$(date -u +%FT%TZ) NOT published: $models/current kept; the new model is in" \
        "$models/current.rejected (see its report.json)" >&2 ;;
    *) echo "$(date -u +%FT%TZ) failed (exit $status): $models/current kept" >&2 ;;
esac
exit "$status"
