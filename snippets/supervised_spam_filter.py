"""A spam filter learned from labels. Run: python snippets/supervised_spam_filter.py"""

import numpy as np
import optax
from flax import nnx

from learnjax.data import messages
from learnjax.experiments.spam_filter import pool_tokenizer, to_arrays
from learnjax.models.transformer import BagOfWordsClassifier
from learnjax.training.loops import accuracy
from learnjax.training.steps import supervised_step

# Labeled examples: each message comes with its answer, 1 = spam, 0 = not spam.
splits = messages.labeled_splits()
tokenizer = pool_tokenizer()
train = to_arrays(tokenizer, splits["pool"])  # 512 labeled messages
test = to_arrays(tokenizer, splits["test"])  # 400 held-out messages, never trained on

model = BagOfWordsClassifier(len(tokenizer), rngs=nnx.Rngs(0))
optimizer = nnx.Optimizer(model, optax.adamw(1e-2), wrt=nnx.Param)
rng = np.random.default_rng(0)
for step in range(300):
    batch = rng.choice(len(train.labels), size=32, replace=False)
    tokens, labels = train.tokens[batch], train.labels[batch]
    loss, _ = supervised_step(model, optimizer, tokens, labels)
print(f"final training loss: {float(loss):.4f}")  # on the last batch of 32
train_accuracy = accuracy(model, train.tokens, train.labels)
test_accuracy = accuracy(model, test.tokens, test.labels)
print(f"accuracy on the training messages: {train_accuracy:.1%}")
print(f"accuracy on held-out messages:     {test_accuracy:.1%}")
