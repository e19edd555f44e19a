"""`textgen export`: a run's generator in a format that runs without textgen, one module
per format: `saved_model` (TensorFlow Serving; the default), `litert` (a LiteRT/TFLite
file for phones and devices) and `web` (a static page that generates in the browser);
and the samplers that run them without TensorFlow (`litert_sampler`, `client`).

Nothing is imported here, so the TensorFlow-free samplers stay free of it.
"""
