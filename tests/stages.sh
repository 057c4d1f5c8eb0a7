#!/usr/bin/env bash
# Runs the suite's stages ("name:command" each) and prints each stage's time.
# A lone "&" between stages starts a new group: the groups run at the same
# time, the stages of one group one after the other. Every stage runs even
# after a failure (so one run reports all of them); every line a stage
# prints is prefixed with its name. Ends with a summary; fails if any
# stage failed.
set -u
results=$(mktemp)
trap 'rm -f "$results"' EXIT
trap 'kill $(jobs -p) 2>/dev/null; exit 130' INT TERM HUP

group() {
  local stage name cmd start result took
  for stage in "$@"; do
    name=${stage%%:*}
    cmd=${stage#*:}
    echo "=== stage $name: $cmd"
    start=$(date +%s)
    bash -c "$cmd" 2>&1 | sed -u "s/^/[$name] /"
    if [ "${PIPESTATUS[0]}" -eq 0 ]; then result=passed; else result=FAILED; fi
    took=$(( $(date +%s) - start ))
    printf '%-10s %-7s %5ds\n' "$name" "$result" "$took" >> "$results"
    echo "=== stage $name $result in ${took}s"
  done
}

begin=$(date +%s)
stages=()
for arg in "$@" "&"; do
  if [ "$arg" = "&" ]; then
    [ "${#stages[@]}" -gt 0 ] && group "${stages[@]}" &
    stages=()
  else
    stages+=("$arg")
  fi
done
wait
echo "=== summary (stages of different groups ran at the same time)"
cat "$results"
passed=$(grep -c ' passed ' "$results")
failed=$(grep -c ' FAILED ' "$results")
echo "stages: $passed passed, $failed failed; wall time $(( $(date +%s) - begin ))s"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
