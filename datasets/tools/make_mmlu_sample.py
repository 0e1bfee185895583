#!/usr/bin/env python3
"""Writes datasets/mmlu/{dev,test}/<subject>_{dev,test}.csv: a small multiple-choice set written
for edgebench in the MMLU release format (no header; question, A, B, C, D, answer letter).

Deterministic: the correct answer's position cycles A, B, C, D so every letter is right equally
often (a model that always answers the same letter scores exactly 25%). Arithmetic questions are
generated from a seeded RNG; the others are written by hand below as (question, correct,
distractor, distractor, distractor).
"""
import csv
import os
import random

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "mmlu")

COMPUTER_SCIENCE = [
    ("How many bits are in one byte?", "8", "4", "16", "10"),
    ("Which data structure serves elements in first-in, first-out order?", "A queue", "A stack", "A binary heap", "A hash set"),
    ("What is the worst-case time complexity of binary search on a sorted array of n elements?", "O(log n)", "O(n)", "O(n log n)", "O(1)"),
    ("Which number system uses only the digits 0 and 1?", "Binary", "Octal", "Decimal", "Hexadecimal"),
    ("What does CPU stand for?", "Central processing unit", "Computer power unit", "Core program utility", "Central peripheral unit"),
    ("What is the hexadecimal number FF in decimal?", "255", "256", "15", "1515"),
    ("Which sorting algorithm repeatedly swaps adjacent elements that are out of order?", "Bubble sort", "Merge sort", "Heap sort", "Radix sort"),
    ("In most programming languages, what is the index of the first element of an array?", "0", "1", "-1", "It depends on the array length"),
    ("Which protocol is used to fetch web pages?", "HTTP", "SMTP", "FTP", "SSH"),
    ("What kind of memory loses its contents when the power is switched off?", "Volatile memory", "Read-only memory", "Flash memory", "Optical storage"),
    ("A function that calls itself is called what?", "Recursive", "Iterative", "Inline", "Anonymous"),
    ("Which logic gate outputs true only when both of its inputs are true?", "AND", "OR", "XOR", "NOT"),
    ("How many different values can be represented with 4 bits?", "16", "8", "4", "32"),
    ("Which data structure is usually used to implement a depth-first search without recursion?", "A stack", "A queue", "A linked hash map", "A priority queue"),
    ("What does a compiler do?", "Translates source code into machine code", "Runs programs line by line without translating them", "Stores files on disk", "Connects computers to a network"),
    ("Which of these is a relational database query language?", "SQL", "HTML", "CSS", "JSON"),
    ("What is 2 to the power of 10?", "1024", "1000", "512", "2048"),
    ("Which structure stores key-value pairs with average constant-time lookup?", "A hash table", "A sorted array", "A singly linked list", "A binary string"),
    ("What is the result of 7 modulo 3?", "1", "2", "0", "3"),
    ("What does RAM stand for?", "Random access memory", "Read and modify", "Rapid application memory", "Remote access module"),
    ("Which of these is an operating system?", "Linux", "Python", "Oracle SQL", "Photoshop"),
    ("What does the acronym GPU stand for?", "Graphics processing unit", "General purpose utility", "Global processing unit", "Graphical program updater"),
    ("A tree in which every node has at most two children is called what?", "A binary tree", "A trie", "A B-tree of order 5", "A graph cycle"),
    ("Which Boolean value does the expression NOT true evaluate to?", "false", "true", "null", "undefined"),
    ("What is the time complexity of reading one element of an array by its index?", "O(1)", "O(n)", "O(log n)", "O(n squared)"),
    ("Which symbol is used for single-line comments in Python?", "#", "//", "--", "%"),
    ("What is the binary number 101 in decimal?", "5", "3", "6", "101"),
    ("Which company first developed the C programming language, at Bell Labs?", "AT&T", "IBM", "Microsoft", "Apple"),
    ("What does URL stand for?", "Uniform resource locator", "Universal routing link", "Unified remote login", "User resource list"),
    ("Which of these is a version control system?", "Git", "Nginx", "Bash", "Vim"),
]

WORLD_GEOGRAPHY = [
    ("What is the capital of France?", "Paris", "Lyon", "Marseille", "Brussels"),
    ("Which is the largest ocean on Earth?", "The Pacific Ocean", "The Atlantic Ocean", "The Indian Ocean", "The Arctic Ocean"),
    ("On which continent is Egypt mostly located?", "Africa", "Asia", "Europe", "South America"),
    ("What is the capital of Japan?", "Tokyo", "Osaka", "Kyoto", "Seoul"),
    ("Which river flows through the city of Cairo?", "The Nile", "The Amazon", "The Danube", "The Ganges"),
    ("What is the capital of Vietnam?", "Hanoi", "Ho Chi Minh City", "Da Nang", "Bangkok"),
    ("Which country has the largest land area?", "Russia", "Canada", "China", "Brazil"),
    ("Mount Everest lies on the border of Nepal and which other country?", "China", "India", "Bhutan", "Pakistan"),
    ("What is the capital of Australia?", "Canberra", "Sydney", "Melbourne", "Perth"),
    ("Which desert covers much of northern Africa?", "The Sahara", "The Gobi", "The Atacama", "The Kalahari"),
    ("In which country is the city of Toronto?", "Canada", "The United States", "Australia", "Ireland"),
    ("What is the capital of Italy?", "Rome", "Milan", "Venice", "Naples"),
    ("Which line divides the Earth into the Northern and Southern Hemispheres?", "The equator", "The prime meridian", "The Tropic of Cancer", "The Arctic Circle"),
    ("What is the capital of Germany?", "Berlin", "Munich", "Hamburg", "Vienna"),
    ("Which continent is the coldest?", "Antarctica", "Europe", "Asia", "North America"),
    ("In which country are the ancient pyramids of Giza?", "Egypt", "Mexico", "Peru", "Greece"),
    ("What is the capital of Canada?", "Ottawa", "Toronto", "Vancouver", "Montreal"),
    ("Which is the longest mountain range on a continent's surface?", "The Andes", "The Alps", "The Urals", "The Pyrenees"),
    ("What is the capital of Spain?", "Madrid", "Barcelona", "Seville", "Lisbon"),
    ("Which sea lies between Europe and Africa?", "The Mediterranean Sea", "The Caribbean Sea", "The Baltic Sea", "The Red Sea"),
    ("What is the capital of Brazil?", "Brasilia", "Rio de Janeiro", "Sao Paulo", "Buenos Aires"),
    ("Which country is both in Europe and in Asia and has Ankara as its capital?", "Turkey", "Greece", "Iran", "Georgia"),
    ("What is the capital of the United Kingdom?", "London", "Manchester", "Edinburgh", "Dublin"),
    ("Which is the most populous city of India?", "Mumbai", "Kolkata", "Chennai", "Jaipur"),
    ("What is the capital of Kenya?", "Nairobi", "Mombasa", "Addis Ababa", "Kampala"),
    ("Which strait separates Spain from Morocco?", "The Strait of Gibraltar", "The Bosporus", "The Strait of Hormuz", "The Bering Strait"),
    ("What is the capital of China?", "Beijing", "Shanghai", "Hong Kong", "Guangzhou"),
    ("Which ocean lies between Africa and Australia?", "The Indian Ocean", "The Pacific Ocean", "The Atlantic Ocean", "The Southern Ocean"),
    ("What is the capital of Mexico?", "Mexico City", "Guadalajara", "Cancun", "Monterrey"),
    ("Which country is shaped like a boot?", "Italy", "Chile", "Norway", "Portugal"),
]

PHYSICAL_SCIENCE = [
    ("At sea level, at what temperature does pure water boil?", "100 degrees Celsius", "90 degrees Celsius", "0 degrees Celsius", "212 degrees Celsius"),
    ("What is the chemical symbol for gold?", "Au", "Ag", "Gd", "Go"),
    ("Which gas do plants take in from the air for photosynthesis?", "Carbon dioxide", "Oxygen", "Nitrogen", "Helium"),
    ("What is the SI unit of force?", "The newton", "The joule", "The watt", "The pascal"),
    ("Which planet is closest to the Sun?", "Mercury", "Venus", "Earth", "Mars"),
    ("What is the chemical formula of water?", "H2O", "CO2", "O2", "H2O2"),
    ("What is the SI unit of electric current?", "The ampere", "The volt", "The ohm", "The coulomb"),
    ("Which particle in an atom carries a negative charge?", "The electron", "The proton", "The neutron", "The nucleus"),
    ("Approximately how fast does light travel in a vacuum?", "300,000 kilometres per second", "300 kilometres per second", "30,000 kilometres per hour", "3,000,000 kilometres per second"),
    ("What is the SI unit of energy?", "The joule", "The newton", "The kelvin", "The hertz"),
    ("Which element has the atomic number 1?", "Hydrogen", "Helium", "Oxygen", "Carbon"),
    ("At what temperature does pure water freeze at sea level?", "0 degrees Celsius", "4 degrees Celsius", "-10 degrees Celsius", "32 degrees Celsius"),
    ("Which planet is known as the Red Planet?", "Mars", "Jupiter", "Saturn", "Venus"),
    ("What does Ohm's law state about voltage V, current I and resistance R?", "V = I times R", "V = I divided by R", "V = I plus R", "V = R divided by I"),
    ("What is the most abundant gas in Earth's atmosphere?", "Nitrogen", "Oxygen", "Carbon dioxide", "Argon"),
    ("Which is the largest planet of the Solar System?", "Jupiter", "Saturn", "Neptune", "Earth"),
    ("What is the SI unit of power?", "The watt", "The joule", "The volt", "The newton"),
    ("What is the chemical symbol for sodium?", "Na", "So", "Sd", "N"),
    ("What kind of energy does a moving object have because of its motion?", "Kinetic energy", "Potential energy", "Chemical energy", "Nuclear energy"),
    ("What is the pH of pure water at 25 degrees Celsius?", "7", "0", "14", "1"),
    ("How many protons does a carbon atom have?", "6", "12", "8", "4"),
    ("What force pulls objects toward the centre of the Earth?", "Gravity", "Friction", "Magnetism", "Buoyancy"),
    ("In which unit is frequency measured?", "Hertz", "Decibels", "Watts", "Metres"),
    ("What is the state of matter of carbon dioxide in dry ice?", "Solid", "Liquid", "Gas", "Plasma"),
    ("Which metal is liquid at room temperature?", "Mercury", "Iron", "Aluminium", "Copper"),
    ("Which colour of visible light has the longest wavelength?", "Red", "Blue", "Violet", "Green"),
    ("What is the SI base unit of temperature?", "The kelvin", "The degree Celsius", "The degree Fahrenheit", "The calorie"),
    ("Which gas do humans exhale that plants use?", "Carbon dioxide", "Hydrogen", "Neon", "Ozone"),
    ("What is the centre of an atom called?", "The nucleus", "The electron cloud", "The orbital", "The shell"),
    ("How many planets are in the Solar System?", "8", "9", "7", "10"),
]


def arithmetic(rng):
    kind = rng.randrange(4)
    a, b = rng.randrange(12, 99), rng.randrange(2, 40)
    if kind == 0:
        q, ans = f"What is {a} + {b}?", a + b
    elif kind == 1:
        q, ans = f"What is {a} - {b}?", a - b
    elif kind == 2:
        a, b = rng.randrange(3, 20), rng.randrange(3, 13)
        q, ans = f"What is {a} times {b}?", a * b
    else:
        b = rng.randrange(2, 10)
        ans = rng.randrange(3, 15)
        q = f"What is {ans * b} divided by {b}?"
    wrong = set()
    for delta in (1, -1, 2, -2, 10, -10, 3):
        if len(wrong) == 3:
            break
        if ans + delta != ans and ans + delta >= 0:
            wrong.add(ans + delta)
    wrong = sorted(wrong)[:3]
    return (q, str(ans), *[str(w) for w in wrong])


def place(rows, offset):
    """Puts each row's correct answer at A, B, C, D in turn."""
    out = []
    for i, (q, right, *wrong) in enumerate(rows):
        pos = (i + offset) % 4
        choices = list(wrong)
        choices.insert(pos, right)
        out.append([q, *choices, "ABCD"[pos]])
    return out


def main():
    rng = random.Random(20261125)
    maths = [arithmetic(rng) for _ in range(30)]
    subjects = {
        "computer_science": COMPUTER_SCIENCE,
        "world_geography": WORLD_GEOGRAPHY,
        "physical_science": PHYSICAL_SCIENCE,
        "elementary_mathematics": maths,
    }
    for split in ("dev", "test"):
        os.makedirs(os.path.join(ROOT, split), exist_ok=True)
    for subject, rows in subjects.items():
        assert len(rows) == 30, subject
        dev, test = place(rows[:6], 1), place(rows[6:], 0)
        for split, data in (("dev", dev), ("test", test)):
            path = os.path.join(ROOT, split, f"{subject}_{split}.csv")
            with open(path, "w", newline="", encoding="utf-8") as f:
                csv.writer(f, lineterminator="\n").writerows(data)


if __name__ == "__main__":
    main()
