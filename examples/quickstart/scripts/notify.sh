#!/bin/sh
# Pretends to ask the reviewers to look at the reports waiting for them.
echo "notifying reviewers"
echo "notified=3" >> "$PLANTAO_OUTPUT"
