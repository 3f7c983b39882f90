"""Admission as a cluster would do it, offline: what Istio's sidecar injector and Knative add to a pod, and the
Pod Security Standards the pod's namespace enforces. Used by tests/test_admission.py over every planned pod."""
