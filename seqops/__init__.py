"""seqops: MLOps for LSTM forecasters over many time series.

The package is a stack of layers (docs/ARCHITECTURE.md): ``seqops.core`` at the bottom, one
package per stage (``validation``, ``features``, ``training``, ``registry``), ``seqops.flows``,
and the entry points (``seqops.cli``, ``seqops.platform``, ``seqops.dags``) on top.
"""
