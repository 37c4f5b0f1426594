#!/bin/sh
# Pretends to send the approved reports to the families over WhatsApp.
echo "sending approved reports"
printf 'sent=34\nsend_failed=2\n' >> "$PLANTAO_OUTPUT"
