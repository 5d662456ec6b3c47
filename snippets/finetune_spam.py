"""Fine-tuning: start from the foundation model and learn a spam filter from 32 labels.

Run it: python snippets/finetune_spam.py
"""

from learnjax import foundation_model
from learnjax.data import messages
from learnjax.training.finetuning import finetune
from learnjax.training.loops import accuracy

foundation = foundation_model()  # pre-trained on unlabeled text, loaded from the cache
splits = messages.labeled_splits()
# Only 32 labeled messages.
labeled = messages.balanced_subset(splits["pool"], 32, seed=0)
test = splits["test"]  # 400 held-out messages in words the 32 rarely contain

texts, labels = [m.text for m in labeled], [m.label for m in labeled]
max_len = messages.MESSAGE_MAX_LEN
test_tokens = foundation.tokenizer.encode_batch([m.text for m in test], max_len)
test_labels = [m.label for m in test]

held_out = {}
for mode in ("full", "scratch"):
    classifier = finetune(foundation, texts, labels, mode=mode,
                          label_names=messages.LABEL_NAMES, max_len=max_len)
    held_out[mode] = accuracy(classifier.model, test_tokens, test_labels)
    print(f"{mode:>8}: held-out accuracy {held_out[mode]:.1%}")
