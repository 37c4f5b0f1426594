#!/bin/sh
# Pretends to fetch new shift reports and reports how many it found.
echo "syncing shift reports from the care system"
echo "novos=12" >> "$PLANTAO_OUTPUT"
