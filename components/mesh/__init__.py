"""The serving platform on every cluster: Istio, Knative Serving, Flagger and Prometheus."""
