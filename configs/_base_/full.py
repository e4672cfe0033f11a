# Full configs: the paper's sizes (Sec. 5.1).
_base_ = ["./runtime.py", "./data_full.py", "./text_bert.py"]
