#!/bin/sh
# Stands in for the worker that reads families' WhatsApp replies; about one time in six the
# Evolution API refuses it, and its heartbeat goes down until the next success. Run it under
# its heartbeat: plantao ping family-replies-worker -- ./workers/family-replies.sh
roll=$(awk 'BEGIN { srand(); print int(rand() * 6) }')
if [ "$roll" -eq 0 ]; then
    echo "Evolution answered 401 Unauthorized on /chat/findMessages: was the instance's API key rotated?" >&2
    exit 1
fi
echo "read $roll replies from families, filed them for the nurses"
