"""Speed and load benchmarks (``sessionrec bench``): each reports ratios against a
reference measured in the same run, on the same machine and under the same load, never
against a wall-clock constant.

==================  =====================================================================
module              what it measures
==================  =====================================================================
``train_speed``     a training step's samples/s over the bare scoring floor
``latency``         ``next_items`` latency of the exported model over the numpy floor and
                    PyTorch eager; batched throughput
``load``            one :class:`~sessionrec.recommender.SessionRecommender` shared by many
                    threads: answers, throughput, memory
``workloads``       the Diginetica-sized data and model they share
==================  =====================================================================

(Published datasets, the other sense of "benchmark", are :mod:`sessionrec.data.benchmarks`.)
"""
