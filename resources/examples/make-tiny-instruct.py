#!/usr/bin/python3
"""Writes tiny-instruct.jsonl: about 200 short alpaca-style rows (arithmetic, capitals, word reversal,
opposites, synonyms) for the LoRA example, so a tiny model's loss visibly falls in a few dozen steps.

Non-obvious choice: the rows are generated, not collected, from fixed lists and one seeded
random.Random, so the file is reproducible byte for byte (run: /usr/bin/python3 make-tiny-instruct.py)
and its answers follow a few rigid patterns a small model can pick up quickly.
"""
import json
import pathlib
import random

rng = random.Random(20241128)
rows = []

# Arithmetic: small sums and products with a fixed answer pattern.
for _ in range(65):
    a, b = rng.randint(0, 9), rng.randint(0, 9)
    rows.append({"instruction": f"What is {a} + {b}?", "input": "", "output": f"{a} + {b} = {a + b}."})
for _ in range(20):
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    rows.append({"instruction": "Multiply the two numbers.", "input": f"{a} and {b}", "output": f"{a} x {b} = {a * b}."})

CAPITALS = [("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
            ("Portugal", "Lisbon"), ("Japan", "Tokyo"), ("China", "Beijing"), ("India", "New Delhi"),
            ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Canada", "Ottawa"), ("Mexico", "Mexico City"),
            ("Brazil", "Brasilia"), ("Peru", "Lima"), ("Chile", "Santiago"), ("Norway", "Oslo"),
            ("Sweden", "Stockholm"), ("Finland", "Helsinki"), ("Poland", "Warsaw"), ("Greece", "Athens")]
for country, capital in CAPITALS:
    rows.append({"instruction": f"What is the capital of {country}?", "input": "",
                 "output": f"The capital of {country} is {capital}."})
    rows.append({"instruction": "Name the capital city.", "input": country, "output": capital + "."})

WORDS = ["stone", "river", "apple", "cloud", "tiger", "bread", "chair", "light", "music", "plant",
         "house", "green", "smile", "ocean", "candle", "garden", "pencil", "window", "silver", "rocket",
         "forest", "yellow", "dragon", "button", "planet", "winter", "summer", "orange", "basket", "mirror"]
for w in WORDS:
    rows.append({"instruction": "Reverse the letters of the word.", "input": w, "output": w[::-1]})

OPPOSITES = [("hot", "cold"), ("big", "small"), ("fast", "slow"), ("up", "down"), ("light", "dark"),
             ("happy", "sad"), ("open", "closed"), ("early", "late"), ("full", "empty"), ("hard", "soft"),
             ("old", "new"), ("rich", "poor"), ("loud", "quiet"), ("wet", "dry"), ("strong", "weak")]
for a, b in OPPOSITES:
    rows.append({"instruction": f"What is the opposite of {a}?", "input": "", "output": f"The opposite of {a} is {b}."})
    rows.append({"instruction": f"What is the opposite of {b}?", "input": "", "output": f"The opposite of {b} is {a}."})

SYNONYMS = [("happy", "glad"), ("big", "large"), ("small", "tiny"), ("fast", "quick"), ("smart", "clever"),
            ("angry", "mad"), ("begin", "start"), ("end", "finish"), ("easy", "simple"), ("quiet", "silent"),
            ("sad", "unhappy"), ("close", "near"), ("rich", "wealthy"), ("brave", "bold"), ("tired", "sleepy")]
for a, b in SYNONYMS:
    rows.append({"instruction": f"Give me a synonym for {a}.", "input": "", "output": f"A synonym for {a} is {b}."})

rng.shuffle(rows)
out = pathlib.Path(__file__).with_name("tiny-instruct.jsonl")
with open(out, "w", encoding="utf-8", newline="\n") as f:
    for r in rows:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
print(f"wrote {len(rows)} rows to {out}")
