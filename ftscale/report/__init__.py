"""The study report: the paper's figures and tables for any study, and transfer evaluation."""
