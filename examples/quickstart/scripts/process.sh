#!/bin/sh
# Pretends to write and review each report; the batch size is a parameter.
batch="${PLANTAO_PARAM_BATCH:-40}"
failed=$((batch / 10))
echo "processing $batch reports"
printf 'approved=%s\nfailed=%s\n' "$((batch - failed))" "$failed" >> "$PLANTAO_OUTPUT"
