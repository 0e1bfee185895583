#!/usr/bin/env python3
"""Writes datasets/long_context.jsonl: long documents with one planted fact ("needle") and a
question about it at the end. Deterministic (fixed seed), so the committed file can be rebuilt
byte for byte: `python3 datasets/tools/make_long_context.py > datasets/long_context.jsonl`.

Each document is a fictional device-lab operations log of roughly 2,800 words, which tokenizes to
about 3,500-4,200 tokens with the shipped models' vocabularies: enough to fill the 4,096-token
context the long_context scenario claims (the harness keeps the last `prompt_tokens` tokens, where
the question is)."""
import json
import random

SEED = 20261125
DEVICES = ["Galaxy S24", "iPhone 15 Pro", "Pixel 9", "Snapdragon dev kit", "M2 Max laptop",
           "Jetson Orin", "Raspberry Pi 5", "ThinkPad X1", "Xiaomi 14", "OnePlus 12"]
TEAMS = ["kernel", "runtime", "thermal", "battery", "model", "release", "QA", "infra"]
ACTIONS = ["re-flashed the firmware", "replaced the USB hub", "recalibrated the power meter",
           "rotated the test phones", "cleaned the cooling fans", "updated the OS image",
           "reseated the memory modules", "swapped the charging cables", "re-ran the baseline suite",
           "archived last week's logs"]
OBSERVATIONS = ["throughput stayed within noise", "the first run was slower while caches warmed",
                "thermal throttling started after eleven minutes", "memory usage peaked during prefill",
                "two runs were discarded because the screen turned on", "battery drain matched the previous week",
                "latency percentiles widened under concurrency", "the quantized model loaded faster",
                "no regressions were flagged", "the nightly job finished early"]
NEEDLES = [
    ("the spare lab key is kept in the blue toolbox under the east bench", "Where is the spare lab key kept?"),
    ("the calibration weight for the power meter is exactly 742 grams", "What is the exact mass of the power meter's calibration weight?"),
    ("the fallback Wi-Fi network is called orchard-lab-5", "What is the name of the fallback Wi-Fi network?"),
    ("the oldest phone in the rack was bought on 14 February 2021", "When was the oldest phone in the rack bought?"),
    ("the thermal chamber must never exceed 41 degrees Celsius", "What temperature must the thermal chamber never exceed?"),
    ("the results database is backed up every night at 02:30", "At what time is the results database backed up?"),
    ("the lab's emergency contact is a technician named Linh Tran", "Who is the lab's emergency contact?"),
    ("the golden reference prompt set has exactly 317 prompts", "How many prompts does the golden reference prompt set have?"),
    ("the rack fan speed is fixed at 1,850 revolutions per minute", "At what speed is the rack fan fixed?"),
    ("the loaner laptop's asset tag is EB-0097", "What is the loaner laptop's asset tag?"),
    ("phones are charged only to 80 percent before measurements", "To what level are phones charged before measurements?"),
    ("the quiet hours for benchmarking start at 22:00", "When do the quiet hours for benchmarking start?"),
]


def entry(rng, day):
    device = rng.choice(DEVICES)
    team = rng.choice(TEAMS)
    action = rng.choice(ACTIONS)
    obs = rng.choice(OBSERVATIONS)
    runs = rng.randint(3, 40)
    temp = rng.randint(21, 38)
    return (f"Day {day}: the {team} team {action} on the {device}. They completed {runs} benchmark runs "
            f"at an ambient temperature of {temp} degrees, and {obs}. The notes were filed in the shared "
            f"tracker and reviewed at the end of the shift.")


def document(rng, needle, words=2800):
    paragraphs, count, day = [], 0, 1
    needle_at = rng.randint(8, 24)  # paragraph index of the planted fact, somewhere in the middle
    while count < words:
        sentences = [entry(rng, day + i) for i in range(3)]
        day += 3
        if len(paragraphs) == needle_at:
            sentences.insert(1, f"Important: {needle}.")
        para = " ".join(sentences)
        paragraphs.append(para)
        count += len(para.split())
    if needle_at >= len(paragraphs):
        paragraphs[len(paragraphs) // 2] += f" Important: {needle}."
    return "\n\n".join(paragraphs)


def main():
    rng = random.Random(SEED)
    for i, (needle, question) in enumerate(NEEDLES, start=1):
        doc = document(rng, needle)
        prompt = (f"Below is the operations log of an on-device AI benchmarking lab.\n\n{doc}\n\n"
                  f"Question: {question} Answer in one sentence.\nAnswer:")
        print(json.dumps({"id": f"long-{i:02d}", "prompt": prompt}, ensure_ascii=False))


if __name__ == "__main__":
    main()
