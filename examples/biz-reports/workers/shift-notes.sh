#!/bin/sh
# Stands in for the worker that collects caregivers' notes from the tablets. Run it under its
# heartbeat: plantao ping shift-notes-worker -- ./workers/shift-notes.sh
notes=$(awk 'BEGIN { srand(); print int(rand() * 12) + 3 }')
echo "collected $notes notes from 4 tablets (ala A, ala B, térreo, enfermaria)"
