#!/usr/bin/env bash
# Snakemake's post-deploy script for envs/learn.yaml: runs once in the new env and installs
# catclean from this checkout, editable and without dependencies (the env file pins them).
# CATCLEAN_ROOT: set by workflow/rules/common.smk to the workflow's directory.
set -eu
python -m pip install --no-deps -e "${CATCLEAN_ROOT:?set by workflow/rules/common.smk}"
