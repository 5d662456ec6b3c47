"""Ask the pre-trained foundation model what the hidden word is.

Run it: python snippets/fill_mask_cafe.py
"""

from learnjax import fill_mask, foundation_model

foundation = foundation_model()  # pre-trained once, then loaded from the cache

sentence = "Today I went to the café and drank [MASK]."
for prediction in fill_mask(foundation, sentence, top_k=5):
    print(f"{prediction.word:>10}  {prediction.probability:6.1%}")
