"""Evaluation: judge the records of a batch, store their scores and the batch's partial aggregate."""
