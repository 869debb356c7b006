"""Keras models (CNN on images, LSTM on text), their Horovod training and embedding inference."""
