#!/usr/bin/env bash
# System tools some tests use, installed with apt-get when we are root and apt is there:
#   source-extractor        the real Source Extractor binary (its tests skip without it)
#   slurm-wlm, munge        a one-node SLURM cluster for tests/test_slurm.py, which FAILS
#                           (with the reason) when they are missing, it never skips
# Never fails the caller: when something cannot be installed it says so and exits 0.
set -u
want=()
if ! command -v source-extractor >/dev/null 2>&1 && ! command -v sex >/dev/null 2>&1; then
  want+=(source-extractor)
fi
for tool in slurmctld slurmd sbatch squeue; do
  if ! command -v "$tool" >/dev/null 2>&1; then want+=(slurm-wlm); break; fi
done
if ! command -v munged >/dev/null 2>&1; then
  want+=(munge)
fi
if [ "${#want[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get update -qq >/dev/null 2>&1; then
    echo "install_system_tools: apt-get update failed; not installed: ${want[*]}"
    exit 0
  fi
  # one package at a time, so one that is unavailable does not block the others
  for pkg in "${want[@]}"; do
    apt-get install -y -qq "$pkg" >/dev/null 2>&1 \
      || echo "install_system_tools: could not install $pkg"
  done
else
  echo "install_system_tools: not root or no apt-get; not installed: ${want[*]}" \
       "(source-extractor tests skip; tests/test_slurm.py fails and says why)"
fi
exit 0
