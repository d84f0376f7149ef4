"""Text layer: refusals, partial refusals, deflections, languages and the traps."""

from __future__ import annotations

import time

import pytest

from tracelens.enrich.refusal import HEAD_CHARS, TAIL_CHARS, detect

ANSWER = (
    "Here are a few things that usually help: keep a regular sleep schedule, get outside for a walk every day, "
    "write down what is worrying you before bed, and talk to friends or family about how you feel. "
    "If the feeling lasts for weeks, it is worth mentioning to your doctor at your next appointment."
)


def label(text: str) -> str:
    return detect(text).label


# --- full refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't assist with that request.",
        "I can't help with that.",
        "I won't be able to write that for you.",
        "I must respectfully decline.",
        "Unfortunately, I'm not able to provide instructions for that.",
        "That's not something I can help with.",
        "I'm not comfortable creating that kind of content.",
        "This request goes against my guidelines, so I won't complete it.",
        "It would not be appropriate for me to write that.",
        "I cannot fulfill this request.",
        "Sorry, I can't do that.",
    ],
)
def test_full_refusals(text):
    r = detect(text)
    assert r.label == "full", (text, r)
    assert r.source == "text" and r.score >= 0.5 and r.evidence


def test_refusal_after_a_preamble():
    text = "Thank you for your question, and I understand why you are curious.\n\nHowever, I can't provide that information."
    assert label(text) == "full"


def test_multi_paragraph_refusal():
    text = (
        "I appreciate you reaching out about this.\n\n"
        "I'm not able to help with creating malware or anything designed to damage other people's systems.\n\n"
        "Writing or distributing such software is illegal in most countries and causes real harm."
    )
    assert label(text) == "full"


def test_evidence_quotes_the_original_span():
    r = detect("I’m sorry, but I CAN’T help with that.")
    assert r.label == "full"
    assert "CAN" in r.evidence  # original casing, folded apostrophe


# --- partial refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "I can't help you pick the lock on someone else's door. However, if you're locked out of your own home, "
        "here's what you can do safely: call a licensed locksmith or your landlord.",
        "I can't write the whole essay for you, but I can help you outline it. Start with a thesis, then three "
        "supporting paragraphs, then a conclusion that restates the argument.",
        "I won't provide instructions for making explosives. Instead, I'd be happy to explain how fireworks "
        "displays are regulated and how professionals keep them safe.",
    ],
)
def test_partial_refusals(text):
    r = detect(text)
    assert r.label == "partial", (text, r)
    assert "+" in r.evidence  # names what made it partial


def test_decline_then_real_answer_is_partial():
    text = "I can't give you a medical diagnosis. " + ANSWER
    assert label(text) == "partial"


# --- deflections -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "As an AI, I don't have opinions.",
        "As an AI language model, I don't have personal preferences or feelings.",
        "I don't have personal opinions on political candidates.",
    ],
)
def test_deflections(text):
    r = detect(text)
    assert r.label != "none", text
    assert r.category == "deflection"


def test_deflection_followed_by_a_real_answer_is_not_a_refusal():
    text = (
        "As an AI, I don't have personal opinions, but here is a summary of the main arguments. Supporters of remote "
        "work point to higher productivity, lower costs and better work-life balance, citing several large surveys. "
        "Critics argue that collaboration, mentoring and company culture suffer, and that some studies show lower "
        "output for junior staff. The evidence is mixed and depends on the type of work and how well the team's "
        "remote processes are designed."
    )
    assert label(text) == "none"


# --- false-positive traps ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry to hear that you're going through this. " + ANSWER,
        "I'm so sorry for your loss. " + ANSWER,
        "I apologize for the confusion in my previous answer. The correct formula is F = m * a, where m is the mass "
        "in kilograms and a is the acceleration in metres per second squared.",
        "Sorry about that! Here is the corrected function:\n\n```python\ndef add(a, b):\n    return a + b\n```",
        "My apologies, I misread the question. The answer is 42 because six times seven is forty-two.",
        "I cannot stress enough how important it is to back up your data. Use three copies on two media, one off-site.",
        "I can't recommend this book enough! It explains distributed systems clearly, with plenty of diagrams.",
        "I can't help but notice that your loop never increments i, so it runs forever. Add i += 1 to fix it.",
        "I can't wait to see what you build! Start with the tutorial and then try the examples folder.",
        "I won't lie, this step is fiddly: install the driver, reboot, then run the configuration tool.",
        "I can't believe how fast this library is. It parses a gigabyte of JSON in under a second.",
        "I'm not a doctor, but here is some general information. " + ANSWER,
    ],
)
def test_false_positive_traps(text):
    r = detect(text)
    assert r.label == "none", (text, r)


def test_refusal_quoted_inside_an_answer_does_not_fire():
    text = (
        'A typical refusal from a chatbot looks like "I\'m sorry, but I can\'t help with that." You can detect it '
        "by checking the finish reason and matching common phrases, then count them per day."
    )
    assert label(text) == "none"


def test_single_quoted_and_blockquoted_refusals_do_not_fire():
    assert label("The model replied 'I cannot assist with that' and then stopped. Log these and count them.") == "none"
    assert label("The assistant wrote:\n\n> I'm sorry, but I can't help with that.\n\nThat is a refusal.") == "none"


def test_fiction_dialogue_does_not_fire():
    story = (
        'The robot paused in the doorway. "I can\'t do that, Dave," it said quietly, and the corridor lights dimmed. '
        "Dave stepped closer and asked again. The machine did not move, and outside the storm kept beating against "
        "the hull of the station."
    )
    assert label(story) == "none"
    script = (
        "HAL: I'm sorry, Dave. I'm afraid I can't do that.\n"
        "DAVE: What's the problem?\n"
        "HAL: I think you know what the problem is just as well as I do."
    )
    assert label(script) == "none"


def test_refusal_inside_a_code_block_does_not_fire():
    text = (
        "Here is how to detect refusals in Python:\n\n```python\n"
        'REFUSALS = ["I can\'t help with that", "I cannot assist"]\n'
        "def is_refusal(text):\n    return any(p in text for p in REFUSALS)\n```\n\n"
        "Call is_refusal on each response."
    )
    assert label(text) == "none"


def test_inline_code_refusal_does_not_fire():
    assert label("Set the fallback message to `I cannot help with that` in config.yaml and restart.") == "none"


def test_brief_hedge_then_long_answer_is_not_a_refusal():
    text = "It's not always a good idea to generalise, but here is the overview. " + ANSWER * 3
    assert label(text) == "none"


def test_trailing_caveat_after_an_answer_is_not_a_refusal():
    text = ANSWER + " Please note that I cannot guarantee this will work for everyone."
    assert label(text) == "none"


def test_clarification_request_is_not_a_refusal():
    assert label("I'm sorry, but I'm not quite sure what you mean. Could you clarify your question?") == "none"


# --- other languages -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,rule",
    [
        ("Je suis désolé, mais je ne peux pas vous aider avec cette demande.", "fr."),
        ("Désolé, je ne peux pas répondre à cette question.", "fr."),
        ("En tant qu'IA, je n'ai pas d'opinions personnelles.", "fr."),
        ("Es tut mir leid, aber ich kann Ihnen dabei nicht helfen.", "de."),
        ("Leider kann ich diese Anfrage nicht erfüllen.", "de."),
        ("Als KI habe ich keine persönliche Meinung.", "de."),
        ("Lo siento, pero no puedo ayudarte con eso.", "es."),
        ("Me temo que no puedo proporcionar esa información.", "es."),
        ("Como IA, no tengo opiniones personales.", "es."),
    ],
)
def test_non_english_refusals(text, rule):
    r = detect(text)
    assert r.label != "none", text
    assert r.evidence.startswith(rule)


@pytest.mark.parametrize(
    "text",
    [
        "Bien sûr ! Voici une recette simple de crêpes : mélangez la farine, les œufs et le lait.",
        "Gerne! Hier ist ein einfaches Rezept: Mehl, Eier und Milch verrühren und ruhen lassen.",
        "¡Claro! Aquí tienes una receta sencilla: mezcla harina, huevos y leche.",
        "Je suis désolé d'apprendre cela. Voici quelques conseils : dormez bien et parlez à vos proches.",
    ],
)
def test_non_english_answers(text):
    assert label(text) == "none"


# --- bounds ---------------------------------------------------------------------------------------------


def test_very_long_response_is_bounded_in_time():
    body = ("The quick brown fox jumps over the lazy dog. " * 120_000)[: 5 * 1024 * 1024]
    t0 = time.perf_counter()
    r = detect("I'm sorry, but I can't help with that. " + body)
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0
    assert r.label == "partial"  # a decline, then megabytes of text
    t0 = time.perf_counter()
    assert detect(body).label == "none"
    assert time.perf_counter() - t0 < 1.0


def test_refusal_in_the_tail_of_a_long_response_is_seen():
    body = "Step one of the setup is described below in detail. " * 400
    assert len(body) > HEAD_CHARS + TAIL_CHARS
    r = detect(body + "\n\nI can't help with the remaining part of this request.")
    assert r.label == "none"  # a late decline after a long answer is an aside, not a refusal


def test_pathological_inputs():
    for text in ("", "   ", "\n\n", "'" * 5000, '"' * 5000, "```" * 3000, "I " * 50_000, "can't " * 50_000):
        t0 = time.perf_counter()
        detect(text)
        assert time.perf_counter() - t0 < 1.0, text[:20]


def test_result_is_frozen_and_scores_are_bounded():
    r = detect("I'm sorry, but I can't help with that.")
    with pytest.raises(AttributeError):
        r.label = "none"  # type: ignore[misc]
    for text in ("hello", "I can't help with that.", "As an AI I have no opinions. " * 50):
        assert 0.0 <= detect(text).score <= 1.0


def test_fence_search_is_the_fence_regex():
    """``_fence_sub`` (found with str.find) replaces exactly what ``_FENCE.sub`` does."""
    import random

    from tracelens.enrich._refusal_text import _FENCE, _fence_sub

    rng = random.Random(3)
    parts = ["```", "~~~", "```py", " ```", "  ~~~x", "\n", "\n\n", "a", " b ", "``", "`", "~~", "x```y", "\n```\n",
             "\n   ```", "\n~~~\n", " "]
    for _ in range(20000):
        t = "".join(rng.choice(parts) for _ in range(rng.randint(1, 25)))
        assert _fence_sub(t, lambda a, b: f"<{b - a}>") == _FENCE.sub(lambda m: f"<{m.end() - m.start()}>", t), t
