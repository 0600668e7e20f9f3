"""Write ``example.jsonl``: the built-in labelled texts of ``python -m thinc_trf_layers compare``.

The texts are written for this project (sentence templates and word lists below, combined
with a fixed seed); they come from no external data set. Four topics (sports, cooking,
technology, weather), 90 texts each, from one sentence to long paragraphs. To make the
choice of pooling matter, many texts carry neutral filler sentences and some carry one
sentence borrowed from another topic, so the topic signal is spread unevenly across the
wordpieces of a text.

Regenerate with ``python thinc_trf_layers/data/make_example.py`` (the output is
deterministic; the shipped file is this script's output).
"""

import json
import pathlib
import random
from typing import Dict, List

SEED = 20261122
PER_TOPIC = 90

SLOTS: Dict[str, List[str]] = {
    # sports
    "team": [
        "the visitors",
        "our local side",
        "the home team",
        "the under-21s",
        "the champions",
        "the newly promoted club",
        "the women's team",
        "the relay squad",
    ],
    "athlete": [
        "the goalkeeper",
        "the veteran striker",
        "the young sprinter",
        "the captain",
        "the left-back",
        "the marathon runner",
        "the point guard",
        "the bowler",
    ],
    "sport": [
        "football",
        "basketball",
        "tennis",
        "cricket",
        "rugby",
        "volleyball",
        "hockey",
        "cycling",
    ],
    "score": [
        "two-nil",
        "three points",
        "a narrow margin",
        "a single goal",
        "forty runs",
        "a late penalty",
        "a tie-break",
        "a photo finish",
    ],
    "venue": [
        "the stadium",
        "the arena",
        "the training ground",
        "the velodrome",
        "the court",
        "the pitch",
        "the track",
    ],
    # cooking
    "dish": [
        "the risotto",
        "a lentil soup",
        "the sourdough",
        "a lemon tart",
        "the curry",
        "a mushroom pie",
        "the pancakes",
        "a tomato sauce",
        "the roast chicken",
    ],
    "ingredient": [
        "garlic",
        "fresh basil",
        "brown butter",
        "smoked paprika",
        "grated ginger",
        "a pinch of salt",
        "lemon zest",
        "toasted cumin",
        "a splash of cream",
    ],
    "tool": [
        "a cast-iron pan",
        "the oven",
        "a heavy pot",
        "the food processor",
        "a whisk",
        "a wooden spoon",
        "the grill",
    ],
    "method": ["simmer", "roast", "fold", "knead", "whisk", "sear", "braise", "season"],
    "minutes": ["ten minutes", "twenty minutes", "half an hour", "forty minutes", "an hour"],
    # technology
    "device": [
        "the new laptop",
        "my phone",
        "the router",
        "the smartwatch",
        "the tablet",
        "the graphics card",
        "the home server",
        "the e-reader",
    ],
    "software": [
        "the operating system",
        "the browser",
        "the compiler",
        "the database",
        "the photo app",
        "the password manager",
        "the spreadsheet program",
    ],
    "feature": [
        "battery life",
        "the encryption",
        "the update mechanism",
        "memory usage",
        "the search index",
        "startup time",
        "the sync service",
    ],
    "company": [
        "the manufacturer",
        "the start-up",
        "the chip maker",
        "the vendor",
        "the open-source project",
        "the cloud provider",
    ],
    "version": [
        "version 2",
        "the latest release",
        "the beta build",
        "the firmware update",
        "the security patch",
        "the long-term support release",
    ],
    # weather
    "weather": [
        "heavy rain",
        "a cold front",
        "thick fog",
        "strong winds",
        "a heatwave",
        "hail",
        "light snow",
        "thunderstorms",
        "a hard frost",
    ],
    "region": [
        "the coast",
        "the northern hills",
        "the valley",
        "the city centre",
        "the islands",
        "the western plains",
        "the mountain passes",
    ],
    "time": [
        "this morning",
        "overnight",
        "by the weekend",
        "on Tuesday",
        "later today",
        "early next week",
        "through the afternoon",
    ],
    "temp": [
        "minus five degrees",
        "twelve degrees",
        "thirty-four degrees",
        "freezing point",
        "well above average",
        "a record low",
    ],
}

TOPICS: Dict[str, List[str]] = {
    "sports": [
        "{team} won by {score} at {venue}.",
        "{athlete} scored in the final minute and the crowd went wild.",
        "After a poor first half, {team} came back to win by {score}.",
        "The coach said {athlete} will miss the next three matches with a hamstring injury.",
        "Tickets for the {sport} final at {venue} sold out in an hour.",
        "{athlete} broke the club record for appearances on Saturday.",
        "The referee showed two red cards before half-time.",
        "{team} have not lost a {sport} match at {venue} since March.",
        "Our {sport} league starts again after the winter break.",
        "{athlete} signed a two-year contract with {team}.",
        "The match went to extra time and was decided by {score}.",
        "The transfer window closes on Friday and {team} still need a defender.",
        "Fans queued outside {venue} to watch {team} train.",
        "{athlete} finished third in the championship and qualified for the world games.",
        "The {sport} season ended with {team} top of the table.",
        "The manager praised the defence after a clean sheet.",
        "Training was moved indoors, but {athlete} still ran the full session.",
        "The semi-final between {team} and their rivals ended in a draw.",
    ],
    "cooking": [
        "{method} the onions with {ingredient} for {minutes} before adding the stock.",
        "Bake {dish} in {tool} for {minutes}, until the top is golden.",
        "I added {ingredient} to {dish} and it tasted much brighter.",
        "Let the dough rest for {minutes}, then {method} it gently on a floured board.",
        "Use {tool} so that {dish} browns evenly.",
        "The secret to {dish} is {ingredient} and patience.",
        "{method} the vegetables in batches so the pan does not steam them.",
        "Taste {dish} at the end and adjust with {ingredient}.",
        "My grandmother made {dish} every Sunday with {ingredient}.",
        "Preheat {tool}, then cook {dish} for {minutes}.",
        "Chop the herbs finely and stir them into {dish} just before serving.",
        "If the sauce is too thick, loosen it with a little pasta water.",
        "Whisk the eggs and sugar until pale, then fold in the flour.",
        "Leftovers of {dish} keep for three days in the fridge.",
        "Toast the spices in a dry pan until fragrant.",
        "Serve {dish} with crusty bread and a green salad.",
        "The recipe calls for {ingredient}, but {ingredient} works just as well.",
        "{method} the meat on a high heat, then lower it and cover the pot.",
    ],
    "technology": [
        "{company} released {version} of {software} with better {feature}.",
        "After {version}, {device} reboots on its own every few hours.",
        "{device} finally supports wireless charging and the battery lasts two days.",
        "I moved my files to {device} and {feature} is noticeably better.",
        "{company} fixed a bug in {software} that leaked memory on start-up.",
        "The benchmark shows {device} running twice as fast as last year's model.",
        "{software} now encrypts every backup by default.",
        "Developers complained that {version} broke the plug-in interface.",
        "You can turn off the telemetry in {software} from the privacy settings.",
        "{company} announced a chip with more cores and lower power draw.",
        "My code compiles faster since I upgraded {software}.",
        "{device} overheats when the graphics driver is out of date.",
        "The outage was caused by an expired certificate on the login server.",
        "{company} will stop shipping security updates for older devices next year.",
        "Install {version} before connecting {device} to the network.",
        "The new keyboard shortcut in {software} saves me a lot of clicks.",
        "{feature} in {software} was rewritten from scratch for {version}.",
        "Reset {device} to factory settings if the update fails twice.",
    ],
    "weather": [
        "{weather} is expected over {region} {time}.",
        "Temperatures will drop to {temp} {time}.",
        "The forecast warns of {weather} along {region}.",
        "{time} we can expect {weather} and temperatures near {temp}.",
        "Flood warnings remain in place for {region} after days of {weather}.",
        "Drivers in {region} should watch out for {weather} {time}.",
        "The sky should clear {time}, though {region} stays cloudy.",
        "Last month was the wettest on record for {region}.",
        "A band of {weather} will move east {time}.",
        "Pollen levels will be high as temperatures climb to {temp}.",
        "{region} recorded {temp}, the coldest night of the year.",
        "Bring an umbrella: showers are likely {time}.",
        "The wind will ease {time} and the sun will break through.",
        "Forecasters expect {weather} to reach {region} {time}.",
        "Frost on the roads made the morning commute slow in {region}.",
        "The high pressure system will bring dry, settled days {time}.",
        "Humidity stays high and {weather} could develop {time}.",
        "Snow ploughs were out in {region} as {weather} arrived.",
    ],
}

# Sentences that point at no topic: they dilute the signal of long texts.
FILLER = [
    "I told my sister about it later that evening.",
    "It was the main thing everyone talked about at work.",
    "Honestly, I did not expect that.",
    "We will see how it goes over the next few weeks.",
    "My neighbour mentioned it too when we met on the stairs.",
    "Anyway, that is what happened.",
    "I wrote it down so I would not forget.",
    "There is not much more to say for now.",
    "Some people were surprised, others not at all.",
    "It reminded me of something from years ago.",
    "I will post an update when I know more.",
    "Nobody in our group had seen anything like it before.",
    "That was more or less the whole story.",
    "Let me know what you think.",
]


def fill(template: str, rng: random.Random) -> str:
    out = template
    while "{" in out:
        start = out.index("{")
        end = out.index("}", start)
        slot = out[start + 1 : end]
        out = out[:start] + rng.choice(SLOTS[slot]) + out[end + 1 :]
    return out[0].upper() + out[1:]


def make_text(topic: str, rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:
        # short: one or two topical sentences
        sentences = [fill(t, rng) for t in rng.sample(TOPICS[topic], rng.randint(1, 2))]
    elif kind < 0.7:
        # medium: topical sentences with a filler or two, now and then one off-topic sentence
        sentences = [fill(t, rng) for t in rng.sample(TOPICS[topic], rng.randint(2, 3))]
        sentences += rng.sample(FILLER, rng.randint(1, 2))
        if rng.random() < 0.25:
            other = rng.choice([t for t in TOPICS if t != topic])
            sentences.append(fill(rng.choice(TOPICS[other]), rng))
        rng.shuffle(sentences)
    else:
        # long: mostly filler, one or two topical sentences, often one off-topic sentence
        sentences = [fill(t, rng) for t in rng.sample(TOPICS[topic], rng.randint(1, 2))]
        sentences += rng.sample(FILLER, rng.randint(3, 8))
        if rng.random() < 0.7:
            other = rng.choice([t for t in TOPICS if t != topic])
            sentences.append(fill(rng.choice(TOPICS[other]), rng))
        rng.shuffle(sentences)
    return " ".join(sentences)


def make_examples(seed: int = SEED, per_topic: int = PER_TOPIC) -> List[Dict[str, str]]:
    rng = random.Random(seed)
    examples = [
        {"text": make_text(topic, rng), "label": topic}
        for topic in TOPICS
        for _ in range(per_topic)
    ]
    rng.shuffle(examples)
    return examples


def main() -> None:
    path = pathlib.Path(__file__).with_name("example.jsonl")
    with path.open("w", encoding="utf8") as f:
        for example in make_examples():
            f.write(json.dumps(example, ensure_ascii=False) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
