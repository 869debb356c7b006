# Databricks notebook source
# The nightly job's catalog check (task catalog_check): does the catalog now hold a class that the
# current content models do not know? Sets the task values `retrain` (1 or 0) and `new_classes`
# for the condition task catalog_changed. A notebook because only notebooks can set task values;
# the logic is hybridrec.models.retrain (the bundle's wheel). Parameter `args`: the same
# --config / --set arguments as the script tasks, as a JSON list.
from hybridrec.models.retrain import run_notebook

run_notebook(spark, dbutils)  # noqa: F821 - the notebook's globals
