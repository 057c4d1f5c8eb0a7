#!/usr/bin/env bash
# Runs the suite's stages in order ("name:command" each), prints each stage's
# time, runs every stage even after a failure (so one run reports all of
# them) and ends with a summary; fails if any stage failed.
set -u
passed=0
failed=0
summary=()
for stage in "$@"; do
  name=${stage%%:*}
  cmd=${stage#*:}
  echo "=== stage $name: $cmd"
  start=$(date +%s)
  if bash -c "$cmd"; then
    result=passed; passed=$((passed + 1))
  else
    result=FAILED; failed=$((failed + 1))
  fi
  took=$(( $(date +%s) - start ))
  summary+=("$(printf '%-10s %-7s %4ds' "$name" "$result" "$took")")
  echo "=== stage $name $result in ${took}s"
done
echo "=== summary"
printf '%s\n' "${summary[@]}"
echo "stages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
