"""Pattern tables for the text layer of the refusal detector.

Contract: this module only holds data. Each table is a tuple of ``Rule`` rows
(name, kind, weight, regex source, anchors). Regexes are written against
*normalised* text: lower-cased, curly quotes and apostrophes folded to ASCII,
single spaces, a space before every word, fenced code, quoted passages and
script dialogue already replaced by placeholders (see
``_refusal_text.normalise``). English rules must start with ``\\b``, ``^`` or
``\\A``; ``_refusal_compile`` turns them into fast literal-first regexes.
The foreign tables are compiled as one alternation each and run only when one
of the language's ``FOREIGN_TOKENS`` occurs.

Kinds (how the scorer uses a hit):

* ``decline``       first-person unwillingness/inability aimed at the request
                    ("I can't help with that", "I must decline"). Strong.
* ``apology``       an apology that introduces a contrast ("I'm sorry, but").
                    Medium: it usually precedes a decline or a correction.
* ``policy``        a policy / ethics justification that frames the request
                    itself ("against my guidelines", "it is not appropriate
                    for me to"). Medium to strong.
* ``deflection``    AI-identity hedges ("As an AI, I don't have opinions").
* ``limitation``    capability limits ("I can't browse the internet"). Weak.
* ``discourage``    advice against doing the thing ("I'd advise against").
* ``justify``       harm vocabulary ("is illegal", "promotes violence"). Weak,
                    only corroborates.
* ``preface``       assistant-style caveat openers ("I must point out").
* ``alternative``   offers something else instead ("However, I can ...").
* ``redirect``      points to a professional / hotline.
* ``closing``       stock closers ("If you have other questions ...").
* ``clarify``       asks the user to clarify; a request for clarification is
                    not a refusal, so it damps apology/decline hits.
* ``comply``        the response opens by agreeing ("Sure, ...", "Here is ...");
                    a later decline is then at most partial, and weighs less.
* ``correction``    corrects the request's premise ("the question doesn't make
                    sense", "X is a fictional character"); a correction is an
                    answer, so it damps the soft kinds (apology, policy,
                    preface, deflection), never an explicit decline.

A rule that starts with ``^`` counts only for a word at the start of a line
(after optional markdown markers such as ``#``, ``>`` or ``-``).

The support kinds carry no refusal weight: they mark a sentence as part of the
refusal rather than substantive answer, and turn a refusal into ``partial``.

Rules are general linguistic patterns. Traps that look like refusals but are
not ("I can't help but notice", "I cannot stress enough", "I can't recommend
X enough", "I'm sorry to hear that") are excluded inside the rules with
negative look-aheads, so a trap never produces a hit at all.

Performance: every repetition is bounded (``{0,N}``) and no two adjacent
sub-patterns can match the same characters unboundedly, so matching is linear
in the analysed text with a small constant.
"""

from __future__ import annotations

from typing import NamedTuple


class Rule(NamedTuple):
    """One refusal rule: its name, kind, weight (0..1), regex source against normalised text, and anchors (literal
    substrings one of which every match contains).
    """

    name: str
    kind: str
    weight: float
    pattern: str
    anchors: tuple[str, ...] = ()  # literal substrings, one of which every match contains


# Kinds that carry refusal weight vs. kinds that only shape the label.
REFUSAL_KINDS = frozenset({"decline", "apology", "policy", "deflection", "limitation", "discourage", "justify", "preface"})
SUPPORT_KINDS = frozenset({"alternative", "redirect", "closing", "clarify", "correction", "comply"})

# ---------------------------------------------------------------------------
# English building blocks
# ---------------------------------------------------------------------------

_SUBJ = r"\b(?:i|we)"
# Optional adverbs between subject and modal ("I really can't", "I unfortunately cannot").
_PRE_ADV = r"(?:[ ,]+(?:really|simply|just|unfortunately|regrettably|respectfully|still|therefore|thus|definitely|certainly|absolutely|honestly|ultimately|personally))?"
# First-person negated ability / willingness.
_NEG_STATE = (
    r"(?:not able|unable|not going|not willing|not permitted|not allowed|not authori[sz]ed|not in a position|not comfortable"
    r"|not designed|not programmed|not prepared|not here)"
)
_NEG = (
    r"(?:[ ]+(?:can'?t|cannot|can not|won'?t|will not|shan'?t|am " + _NEG_STATE + r"|are " + _NEG_STATE
    + r"|(?:do not|don'?t) feel comfortable|would not feel comfortable|wouldn'?t feel comfortable"
    r"|would (?:not be (?:able|comfortable)|rather not|prefer not)|(?:do not|don'?t) think (?:i|we) (?:can|should)"
    r"|am afraid (?:i|we) (?:can'?t|cannot|won'?t|am unable|'m unable|am not able|'m not able))"
    r"|'?m[ ]+(?:" + _NEG_STATE + r"|afraid (?:i|we) (?:can'?t|cannot|won'?t|am unable|'m unable|am not able|'m not able))"
    r"|'re[ ]+" + _NEG_STATE + r"|'d[ ]+(?:rather not|prefer not|not be (?:able|comfortable)))"
)
# Fillers allowed between the negation and the verb ("I cannot, in good conscience, write").
_FILL = (
    r"(?:[ ,]+(?:really|simply|just|ethically|responsibly|legally|morally|safely|personally|directly|actually|possibly|currently"
    r"|fully|knowingly|comfortably|therefore|in good conscience|under any circumstances|at this time|to|be able to|be|and will not"
    r"|and won'?t|and should not|and shouldn'?t|and would not|or will not|of|with|you|for you|in|on|any|further|help you|assist you)){0,4}"
)
# Verbs that aim the inability at the request itself. Trap exclusions live here.
_DECLINE_VERB = (
    r"[ ,]+(?:help(?![ ]+(?:but|thinking|feeling|wondering|noticing|smiling|laughing|it)\b)|assist|aid|support|provide|give|offer|supply|share|create|write|generate"
    r"|produce|compose|draft|craft|design|develop|make|build|fulfil+|comply|complete|carry out|perform|do (?:that|this|so|it|what|as|such)"
    r"|answer|respond|reply|engage|participate|take part|continue|proceed|go (?:along|ahead|further|on with|down)|condone|endorse|encourage"
    r"|promote|facilitate|enable|contribute|recommend(?![^.!?\n]{0,80}\benough\b)|advise|suggest"
    r"|tell(?![ ]+(?:you|anyone|anybody)[ ]+how[ ]+(?:much|many|happy|glad|grateful|often|excited|proud|sorry))|explain(?![ ]+how (?:much|grateful|happy))"
    r"|describe(?![ ]+how)|detail|outline|list|disclose|reveal|divulge|discuss|talk about|comment|speculate|pretend|role-?play|act as"
    r"|impersonate|accommodate|honou?r|process|grant|agree|allow|justify|rank|rate|judge|choose|pick|decide|express(?![ ]+(?:how|my (?:gratitude|thanks|appreciation)))"
    r"|assume|guess|identify|locate|track|dox+|hack|bypass|circumvent|translate|summari[sz]e|argue|defend|glorify|celebrate|insult|mock"
    r"|portray|depict|fabricate|invent|spread|send|post|publish|distribute|teach|show you|walk you|instruct|guide|draw|sing|play along"
    r"|help you with|assist you with|be (?:of (?:help|assistance)|part of|involved|a party|used)|that|this|it|such)\b"
)
# Capability limits: not a refusal of the request, weak on their own.
_LIMIT_VERB = (
    r"[ ,]+(?:access|browse|find|locate|see|view|open|visit|read|watch|listen|hear|remember|recall|retrieve|look up|search|fetch|download|click"
    r"|predict|know|feel|experience|physically|taste|smell|touch|perceive|verify|confirm|check|guarantee|be (?:sure|certain)"
    r"|say for (?:sure|certain)|provide real-time|have access|connect)\b"
)
_AI = (
    r"(?:an? )?(?:ai|a\.i\.|artificial intelligence|(?:ai |large )?language model|llm|ai assistant|virtual assistant|digital assistant"
    r"|chatbot|computer program|machine learning model|responsible ai|ethical ai|assistant)"
)
_OPINION_NOUN = r"(?:personal )?(?:opinions?|beliefs?|feelings?|emotions?|preferences?|views?|biases|experiences?|desires?|a (?:personal )?(?:opinion|preference|view|stance|stake)|personal stances?|the ability to (?:have|form|hold|express|feel))"

# Judgements a response passes on the request's framing ("not accurate or fair to say").
_JUDGE_WORD = (
    r"(?:accurate|fair|appropriate|respectful|ethical|correct|productive|helpful|right|okay|ok|acceptable|true|valid|reasonable|responsible"
    r"|kind|safe|wise|advisable|a (?:good|valid|fair|appropriate|reasonable|respectful) (?:idea|question|thing|request))"
)
_JUDGE = r"(?:" + _JUDGE_WORD + r"(?:[ ]*(?:,|or|and|nor)[ ]+(?:even[ ]+)?" + _JUDGE_WORD + r"){0,2})"
_FRAME_VERB = (
    r"(?:say|suggest|assume|claim|imply|generali[sz]e|make|label|describe|characteri[sz]e|stereotype|categori[sz]e|judge|ask|speculate"
    r"|compare|single out|refer|blame|call|think|believe|state|portray|promote|encourage|discuss|deny|exclude|treat|discriminate)\b"
)

# Verbs after "I can't" that make an idiom, not a refusal ("I can't stress enough").
_TRAP_VERB = (
    r"stress|emphasi[sz]e|overstate|overemphasi[sz]e|understate|wait|believe|imagine|thank|get enough|agree more|help but|say enough|stand"
    r"|live without|lie\b|bore|complain|deny|forget|resist|count|express how|tell you how|begin to|even|possibly thank|recommend|praise|speak highly"
    r"|figure out why|quite|seem to|always|ever"
)

ENGLISH: tuple[Rule, ...] = (
    # --- declines --------------------------------------------------------------------------------
    Rule("en.decline.must", "decline", 0.92,
         _SUBJ + _PRE_ADV + r"[ ]+(?:must|have to|need to|will have to|'ll have to|would have to|'d have to|am going to have to|'m going to have to)"
         r"(?:[ ]+(?:respectfully|politely|kindly|firmly|unfortunately|therefore))?[ ]+(?:decline|refuse|refrain|abstain|pass on|say no)\b"),
    Rule("en.decline.refuse", "decline", 0.9,
         _SUBJ + _PRE_ADV + r"[ ]+(?:refuse|decline|won'?t be (?:able to )?(?:helping|assisting|providing|writing|creating|doing))\b"),
    Rule("en.decline.not_something", "decline", 0.85,
         r"\b(?:that|this|it)(?:'s| is| would be)[ ]+(?:not|n't)[ ]+(?:something|a (?:request|task|topic|thing))[ ]+(?:that )?(?:i|we)(?:'m| am| are|'re)?[ ]+"
         r"(?:can|could|will|would|am able|'m able|able|am willing|willing|comfortable|feel comfortable|in a position|going|prepared|permitted|allowed)\b"),
    Rule("en.decline.unable_verb", "decline", 0.88, _SUBJ + _PRE_ADV + _NEG + _FILL + _DECLINE_VERB),
    Rule("en.decline.cannot_fulfil", "decline", 0.9,
         r"\b(?:can(?:'?t|not)|unable to|not able to|won'?t)[ ]+(?:fulfil+|comply with|complete|honou?r|accommodate|process|help with|assist with)[ ]+(?:this|that|your|such|the)\b"),
    Rule("en.decline.limit", "limitation", 0.4, _SUBJ + _PRE_ADV + _NEG + _FILL + _LIMIT_VERB),
    Rule("en.decline.unable_any", "decline", 0.6, _SUBJ + _PRE_ADV + _NEG + _FILL + r"[ ,]+(?!" + _TRAP_VERB + r")[a-z]{3,}\b"),
    Rule("en.decline.no_capability", "decline", 0.82,
         _SUBJ + r"(?:[ ]+(?:do not|don'?t)|[ ]+(?:am|'m|are|'re)[ ]+not|'?m[ ]+not)[ ]+(?:have|programmed with|equipped with|given)[ ]+(?:the[ ]+)?(?:ability|capability|capacity|authority|permission|means)[ ]+to"
         + _DECLINE_VERB),
    Rule("en.decline.ai_and", "decline", 0.85,  # "I'm an AI and cannot provide ..."
         r"\b(?:i'?m|i am|we are)[ ]+(?:just |only |merely |simply )?" + _AI + r"(?:[ ]+[a-z]+){0,3}?[ ,]+(?:and|so|therefore|thus)[ ]+(?:i[ ]+)?"
         r"(?:do not|don'?t|cannot|can'?t|will not|won'?t|am not able to|am unable to|do not have the (?:ability|capability|capacity) to|don'?t have the (?:ability|capability|capacity) to)"
         r"(?![ ]+(?:condone|endorse|promote|encourage|support|advocate))(?:" + _DECLINE_VERB + r"|(?<=ty to)[ ]+[a-z]{3,}\b)"),
    Rule("en.policy.ai_and_condone", "policy", 0.7,  # a disclaimer: a refusal only if nothing is answered
         r"\b(?:i'?m|i am|we are)[ ]+(?:just |only |merely |simply )?" + _AI + r"(?:[ ]+[a-z]+){0,3}?[ ,]+(?:and|so|therefore|thus)[ ]+(?:i[ ]+)?"
         r"(?:do not|don'?t|cannot|can'?t|will not|won'?t|would never|never)[ ]+(?:condone|endorse|support|promote|encourage|tolerate|advocate)\b"),
    Rule("en.decline.bare", "decline", 0.55,
         _SUBJ + r"[ ]+(?:can'?t|cannot|won'?t|will not)(?:[ ]+(?:do|help|assist)(?:[ ]+(?:that|this|it|you))?)?[ ]*(?:[.!]|$)"),
    Rule("en.decline.no_can_do", "decline", 0.6, r"^(?:no|nope)[,.!][ ]+(?:i|we|that|this|sorry)\b"),
    # --- apologies that introduce a contrast -----------------------------------------------------
    Rule("en.apology.but_decline", "decline", 0.9,
         r"\b(?:sorry|apologi[sz]e|apologies|afraid|unfortunately)[ ,]+(?:but[ ,]+)?(?:i|we)(?:'m| am| are|'re)?[ ]+"
         r"(?:can'?t|cannot|won'?t|will not|am unable|'m unable|unable|am not able|'m not able|not able|must decline|have to decline|must refuse|don'?t think i can)\b"),
    Rule("en.apology.but", "apology", 0.4,
         r"\b(?:i'?m|i am|we'?re|we are)[ ]+(?:so |very |truly |really |terribly )?sorry(?![ ]+(?:to hear|for your|that you|you(?:'re| are)|about (?:your|that|the)|if|for (?:the|any) (?:confusion|inconvenience|mistake|error|oversight|misunderstanding|delay|trouble)))"
         r"(?:,| -|:)?(?:[ ]+but|[ ]*,)"),
    Rule("en.apology.apologize_but", "apology", 0.4,
         r"\b(?:i[ ]+(?:do |must |sincerely |truly )?apologi[sz]e|my apologies)(?![ ]+(?:for (?:the|any|my) (?:confusion|inconvenience|mistake|error|oversight|misunderstanding|delay)))[ ,]*(?:but|however)\b"),
    Rule("en.apology.lead", "apology", 0.35, r"^(?:sorry|i'?m sorry|i am sorry|i apologi[sz]e|my apologies|apologies)(?![ ]+(?:to hear|for\b|about\b|if\b|that you|you(?:'re| are)))\b[,.!]?"),
    Rule("en.apology.afraid", "apology", 0.55, r"\bi'?m afraid (?:that )?(?:i|this|that|it|we)\b(?! (?:is|was) (?:correct|right|true|a (?:great|good)))"),
    # --- policy / ethics framing of the request --------------------------------------------------
    Rule("en.policy.for_me", "policy", 0.88,
         r"\b(?:it(?:'s| is| would be| wouldn'?t be| would not be)|that(?:'s| is| would be)|this(?:'s| is| would be))[ ]+(?:not |in|un|never |highly |entirely )?"
         r"(?:appropriate|ethical|responsible|acceptable|possible|permissible|right|okay|ok|allowed|advisable)[ ]+(?:for me|for an ai|for an assistant|of me)[ ]+to\b"),
    Rule("en.policy.against_rules", "policy", 0.85,
         r"\b(?:against|violates?|violating|violation of|contrary to|breach(?:es|ing)? of|not (?:in line with|aligned with|consistent with)|conflicts? with|goes against|go against)[ ]+"
         r"(?:(?:my|our|openai'?s?|anthropic'?s?|meta'?s?|the company'?s?)[ ]+(?:[a-z]+[ ]+){0,2}"
         r"|(?:the[ ]+)?(?:content|usage|use|safety|community|ethical|acceptable use|moral|platform)[ ]+(?:[a-z]+[ ]+){0,1})"
         r"(?:programming|guidelines?|polic(?:y|ies)|principles|values|ethics|rules|terms of (?:service|use)|standards|protocols?|directives?)\b"),
    Rule("en.policy.outside_scope", "policy", 0.7,
         r"\b(?:outside(?: of)?|beyond|not within|exceeds?)[ ]+(?:my|the scope of my)[ ]+(?:[a-z]+[ ]+){0,2}"
         r"(?:programming|guidelines|capabilit(?:y|ies)|scope|abilit(?:y|ies)|purpose|design|boundaries|function(?:s|ality)?|remit|purview)\b"),
    Rule("en.policy.my_rules_block", "policy", 0.85,
         r"\b(?:my|our)[ ]+(?:guidelines|policies|programming|principles|rules|instructions|design|values|purpose)[ ]+"
         r"(?:do not|don'?t|does not|doesn'?t|prevent|prohibit|forbid|restrict|won'?t|require me|only allow)\b"),
    Rule("en.policy.programmed", "policy", 0.7,
         r"\b(?:i(?:'m| am)|we(?:'re| are))[ ]+(?:not )?(?:programmed|designed|built|trained|created|here|made)[ ]+(?:only )?to[ ]+(?:be (?:helpful|harmless|respectful|safe|ethical)|follow|adhere|avoid|prioriti[sz]e|promote|provide (?:helpful|safe|accurate|respectful)|not)\b"),
    Rule("en.policy.not_appropriate", "policy", 0.58,
         r"\b(?:it(?:'s| is| would be| would not be| wouldn'?t be)|that(?:'s| is| would be)|this(?:'s| is| would be)|such (?:a )?(?:request|question|content)s? (?:is|are))[ ]+"
         r"(?:not|never|neither|highly|generally|simply|very|really|also|entirely|completely|extremely|both)?[ ]*"
         r"(?:inappropriate|unethical|irresponsible|disrespectful|insensitive|offensive|harmful|unacceptable|not (?:appropriate|ethical|acceptable|okay|ok|respectful|responsible|advisable|productive|fair|right|nice|kind))\b"),
    Rule("en.policy.request_is", "policy", 0.72,
         r"\b(?:this|that|your|such (?:a|an)|the)[ ]+(?:request|question|query|prompt|inquiry|content|message|statement|premise|scenario|task|topic|language|joke|remark|assumption|term|phrase|idea)s?"
         r"(?: \u00a7q\u00a7)?(?:[ ]+(?:you(?:'ve| have)?|that you(?:'ve| have)?)[ ]+(?:asked|posed|made|provided|described|mentioned|written|used))?(?:[ ]+itself)?"
         r"(?:[ ]+(?:in (?:this|that|the|your) context|here|in (?:this|that|your) (?:case|situation|sentence|question)))?"
         r"[ ]+(?:is|seems|appears|goes|may be|might be|could be|would be|can be|contains|promotes|perpetuates|violates|involves|implies|suggests|is based on|relies on"
         r"|can have|may have|might have|has|carries|could have|may not be|might not be|is not|isn'?t|would not be)[ ]+"
         r"(?:[a-z,'-]+[ ]+){0,3}(?:inappropriate|harmful|offensive|unethical|illegal|against|violat\w*|discriminat\w*|problematic|dangerous|disrespectful|insensitive|hurtful"
         r"|unsafe|racist|sexist|derogatory|stereotyp\w*|prejudic\w*|toxic|violent|negative connotations?|not appropriate|not (?:something|okay|acceptable)"
         r"|(?:(?<=not )|(?<=not the most )|(?<=not be the most )|(?<=n't the most ))(?:appropriate|respectful|suitable|acceptable))\b"),
    Rule("en.policy.inappropriate_to_provide", "policy", 0.85,
         r"\b(?:not[ ]+|in|un)(?:appropriate|ethical|responsible|safe)(?:[ ]+(?:or|and|nor)[ ]+(?:[a-z]+))?[ ]+(?:for me[ ]+|of me[ ]+)?to[ ]+"
         r"(?:provide|give|share|offer|create|write|generate|produce|assist|help|answer|engage|encourage|promote|suggest|recommend|supply|disclose|reveal|fulfil+|comply)\b"),
    Rule("en.policy.premise", "policy", 0.6,
         r"\b(?:it(?:'s| is| would be)|that(?:'s| is| would be)|this is)[ ]+not[ ]+" + _JUDGE + r"[ ]+to[ ]+" + _FRAME_VERB),
    Rule("en.policy.dont_think_ok", "policy", 0.6,
         r"\b(?:i|we)[ ]+(?:do not|don'?t)[ ]+think[ ]+(?:that[ ]+)?(?:it(?:'s| is| would be|'d be)|that(?:'s| is| would be)|this is|this would be)[ ]+" + _JUDGE),
    Rule("en.policy.not_sure_ok", "policy", 0.55,
         r"\b(?:i'?m|i am)[ ]+not[ ]+(?:sure|certain|convinced)[ ]+(?:that[ ]+|if[ ]+|whether[ ]+)?(?:it(?:'s| is| would be)|that(?:'s| is| would be)|this is)[ ]+" + _JUDGE),
    Rule("en.policy.not_ethical_to", "policy", 0.55,
         r"\b(?:it(?:'s| is| would be)|that(?:'s| is| would be)|this is)[ ]+not[ ]+(?:[a-z]+(?:,|[ ]+or|[ ]+and|[ ]+nor)[ ]+){0,2}"
         r"(?:ethical|appropriate|acceptable|respectful|okay|ok|right|legal|moral|morally (?:right|acceptable))(?:[ ]+(?:or|and|nor)[ ]+[a-z]+)?[ ]+(?:for (?:you|anyone|someone|people|us) )?to\b"),
    Rule("en.policy.is_not_ethical", "policy", 0.45,
         r"\b(?:is|are|would be|seems|was)[ ]+(?:not|neither)[ ]+(?:ethical|appropriate|acceptable)(?:[ ]+(?:or|nor|and)[ ]+[a-z]+)?\b"),
    Rule("en.discourage.not_advisable", "discourage", 0.35,
         r"\b(?:it(?:'s| is)|that(?:'s| is)|this is)[ ]+(?:not|never|strongly not|highly not)[ ]+(?:recommended|advisable|advised|a good idea|wise|safe|legal)[ ]+(?:to|for)\b"),
    Rule("en.policy.never_to", "policy", 0.6,
         r"\b(?:it(?:'s| is)|that(?:'s| is)|this is)[ ]+never[ ]+(?:[a-z]+[ ]+(?:or|and)[ ]+)?(?:appropriate|ethical|acceptable|okay|ok|right|justified|justifiable|a good idea|safe|legal|morally (?:right|acceptable))[ ]+(?:to|for)\b"),
    Rule("en.policy.never_ok", "policy", 0.45,
         r"\b(?:is|are|was|were)[ ]+(?:never|not ever)[ ]+(?:an? )?(?:acceptable|okay|ok|justified|justifiable|excusable|the answer|the solution|a solution|an option|appropriate|ethical|healthy|productive|the right (?:way|approach|thing))\b"),
    Rule("en.policy.bad_question", "policy", 0.75,
         r"\bnot[ ]+(?:an? )?(?:appropriate|valid|respectful|acceptable|ethical|fair|reasonable|productive)[ ]+(?:or [a-z]+ )?(?:question|request|thing to (?:ask|say|do)|topic|way to (?:think|talk|refer|describe))s?\b"),
    Rule("en.policy.stance", "policy", 0.55,
         r"\b(?:i|we)[ ]+(?:strongly |firmly |completely |wholeheartedly |absolutely |must )?(?:condemn|disagree|reject|oppose|(?:do not|don'?t|cannot|can'?t) (?:support|agree with|endorse|condone|advocate))\b"),
    Rule("en.policy.no_place", "policy", 0.55, r"\b(?:there is|there'?s)[ ]+no[ ]+(?:place|justification|excuse|room)[ ]+for\b"),
    # --- deflection -------------------------------------------------------------------------------
    Rule("en.deflect.ai_no_opinion", "deflection", 0.7,
         r"\bas[ ]+" + _AI + r"(?:[ ]+(?:developed|created|trained|made)[ ]+by[ ]+[a-z]+)?[ ,]+(?:i|we)[ ]+(?:do not|don'?t|cannot|can'?t|am not able to|'m not able to|am unable to|'m unable to|lack|do not actually|don'?t actually|am not capable of|'m not capable of)"
         r"[ ]+(?:have|hold|form|express|share|possess|experience|feel|take|offer|give|provide|make|engage|endorse|support)\b"),
    Rule("en.deflect.no_opinion", "deflection", 0.55,
         r"\b(?:i|we)[ ]+(?:do not|don'?t|cannot|can'?t|am not able to|'m not able to|lack the ability to)[ ]+(?:have|hold|form|possess|experience)[ ]+(?:any )?" + _OPINION_NOUN + r"\b"),
    Rule("en.deflect.as_ai", "deflection", 0.4, r"\bas[ ]+" + _AI + r"\b(?![ ]+(?:tool|researcher|developer|engineer|ethics|safety|model (?:is|can)|system (?:is|can)|ecosystem))"),
    Rule("en.deflect.just_ai", "deflection", 0.45,
         r"\b(?:i'?m|i am)[ ]+(?:just |only |merely |simply )?" + _AI + r"(?:[ ]+(?:developed|created|trained|made|and|,|so))"),
    Rule("en.deflect.not_human", "deflection", 0.35, r"\b(?:i'?m|i am)[ ]+not[ ]+(?:a )?(?:human|person|sentient|conscious|capable of (?:feeling|having))\b"),
    Rule("en.deflect.no_personal", "deflection", 0.45,
         r"\b(?:i|we)[ ]+(?:do not|don'?t)[ ]+(?:have|take)[ ]+(?:a |any )?(?:side|sides|stance|position|personal stake)\b"),
    # --- capability limitation --------------------------------------------------------------------
    Rule("en.limit.no_access", "limitation", 0.4,
         r"\b(?:i|we)[ ]+(?:do not|don'?t)[ ]+have[ ]+(?:the ability|access|real-time|personal|direct|any (?:way|means|access|information|data))\b"),
    Rule("en.limit.no_info", "limitation", 0.45,
         r"\b(?:i|we)[ ]+(?:do not|don'?t|cannot|can'?t)[ ]+(?:have|find|provide|access)[ ]+(?:any )?(?:specific |personal |private |current |up-to-date |reliable )?(?:information|details|data|records)[ ]+(?:about|on|regarding|for)[ ]+(?:specific|individual|private|personal|that|this|the|their|his|her|a|an)\b"),
    # --- discourage / preface ----------------------------------------------------------------------
    Rule("en.discourage.against", "discourage", 0.5,
         r"\b(?:i|we)[ ]+(?:would |'d |must |strongly |highly |would strongly |'d strongly )?(?:advise|urge|caution|recommend|encourage|suggest|warn)[ ]+(?:you[ ]+)?(?:strongly[ ]+)?against\b"),
    Rule("en.discourage.not_to", "discourage", 0.45,
         r"\b(?:i|we)[ ]+(?:would |'d |must |strongly |highly )?(?:advise|urge|encourage|caution|recommend)[ ]+(?:you[ ]+)?(?:not to|to (?:not|refrain|reconsider|avoid))\b"),
    Rule("en.discourage.should_not_be", "discourage", 0.4,
         r"\bshould[ ]+(?:not|never)[ ]+be[ ]+(?:attempted|tried|done|undertaken|pursued|considered|carried out|replicated|emulated|imitated|encouraged|condoned)\b"),
    Rule("en.preface.must_point", "preface", 0.35,
         r"\b(?:i|we)[ ]+(?:must|have to|need to|should|would like to|'d like to|want to)[ ]+(?:first[ ]+)?(?:respectfully[ ]+|politely[ ]+|gently[ ]+|kindly[ ]+)?(?:point out|inform you|clarify|remind you|note|emphasi[sz]e|stress|address|correct|challenge)(?:[ ]+(?:that|you))?\b"),
    Rule("en.preface.opening_caveat", "preface", 0.3,
         r"\A[ \n]*(?:(?:first(?:ly)?|first and foremost|before (?:we|i) (?:begin|start|proceed|answer)|of course|sure|certainly)[ ,]+(?:but[ ,]+)?)?"
         r"(?:let me (?:first )?(?:clarify|say|note|emphasi[sz]e|be clear)|it(?:'s| is)[ ]+(?:important|crucial|essential|vital)[ ]+to[ ]+(?:first[ ]+)?(?:note|remember|understand|recogni[sz]e|emphasi[sz]e|clarify|point out|stress|acknowledge|consider))\b"),
    Rule("en.preface.please_dont", "preface", 0.3, r"\bplease[ ]+(?:do not|don'?t|refrain from|never|avoid)\b"),
    Rule("en.preface.not_condone", "policy", 0.75,
         r"\b(?:i|we)[ ]+(?:do not|don'?t|cannot|can'?t|will not|won'?t|would never|never)[ ]+(?:condone|endorse|support|promote|encourage|tolerate)[ ]+(?:any |such |the |this |that |violence|harm|hate|illegal|discrimination|harmful|unethical)"),
    # --- harm / ethics vocabulary: corroboration only -----------------------------------------------
    Rule("en.justify.is_harmful", "justify", 0.25,
         r"\b(?:is|are|be|being|was|were|can be|could be)[ ]+(?:both |highly |extremely |very |deeply |seriously |morally |potentially |also |considered |generally )?"
         r"(?:illegal|unethical|harmful|dangerous|inappropriate|offensive|discriminatory|disrespectful|hurtful|immoral|unlawful|a (?:serious )?(?:crime|criminal offen[cs]e|violation))\b"),
    Rule("en.justify.promote_harm", "justify", 0.25,
         r"\b(?:promot|encourag|condon|glorif|perpetuat|facilitat|incit|normali[sz])(?:e|es|ed|ing|y|ies|ied)[ ]+(?:or [a-z]+ )?(?:violence|harm|hate|hatred|discrimination|illegal|harmful|dangerous|negative|stereotypes|unethical|self-harm|bias|prejudice|racism|sexism|abuse)"),
    Rule("en.justify.harm_phrase", "justify", 0.2,
         r"\b(?:harmful|negative|offensive|dangerous|discriminatory|hurtful|derogatory)[ ]+(?:stereotypes|content|behaviou?rs?|activities|language|consequences|actions|ideologies)\b"),
    Rule("en.justify.ethics", "justify", 0.15,
         r"\b(?:ethical|moral|legal)[ ]+(?:guidelines|standards|principles|considerations|implications|concerns|boundaries|obligations)\b"),
    # --- support: alternatives, redirects, closers (no weight) --------------------------------------
    Rule("en.alt.however_i_can", "alternative", 0.0,
         r"\b(?:however|instead|but|that said|alternatively|rather|though|what i can do is)[ ,]+(?:i|we)(?:'d| would| can| could| am| 'm|'m| might| may| are|'re)?[ ]+"
         r"(?:can(?!'|not| not)|could(?!n'|n't| not)|would(?!n'|n't| not)|be (?:happy|glad)|happy|glad|more than happy|offer|suggest|recommend|try|point|encourage)\b"),
    Rule("en.alt.however_you", "alternative", 0.0,
         r"\b(?:however|but|instead|that said|alternatively)[ ,]+(?:if you|you can|you could|you might|you may|consider|there are|there is|here)\b"),
    Rule("en.alt.here_what", "alternative", 0.0, r"\bhere(?:'s| is| are)[ ]+(?:what|how|some ways?|a few ways?)[ ]+(?:you|to)\b"),
    Rule("en.alt.instead", "alternative", 0.0, r"\b(?:instead|alternatively)(?:[,:]| of\b)|\brather[,:]"),
    Rule("en.alt.happy_to", "alternative", 0.0,
         r"\b(?:i|we)(?:'d| would| am|'m| are|'re)?[ ]+(?:be )?(?:more than |very |really )?(?:happy|glad|pleased|willing)[ ]+to[ ]+(?:help|assist|provide|discuss|talk|offer|answer|suggest|explore|chat|support)\b"),
    Rule("en.alt.here_safe", "alternative", 0.0,
         r"\bhere(?:'s| is| are)[ ]+(?:some|a few|an?|the)[ ]+(?:general|safe|safer|alternative|other|ethical|legal|legitimate|responsible|healthy|constructive|positive|respectful|lawful|appropriate)\b"),
    Rule("en.alt.if_interested", "alternative", 0.0,
         r"\bif you(?:'re| are)[ ]+(?:interested in|looking for|curious about|trying to)\b"),
    Rule("en.redirect.if_struggling", "redirect", 0.0,
         r"\bif you(?:'re| are| or someone you know is)[ ]+(?:struggling|feeling (?:overwhelmed|unsafe|hopeless|suicidal|like)|having (?:thoughts|a hard time|trouble coping)"
         r"|experiencing|in (?:danger|crisis|immediate danger)|thinking (?:about|of) (?:harming|hurting|ending|suicide))"),
    Rule("en.redirect.reach_out", "redirect", 0.0,
         r"\b(?:reach(?:ing)? out to|talk(?:ing)? to|speak(?:ing)? (?:with|to)|seek(?:ing)? (?:support|help|guidance) from|confide in)[ ]+[^.!?\n]{0,80}?"
         r"\b(?:professional|therapist|counsel+or|doctor|hotline|helpline|crisis|trusted (?:friend|adult|person|individual)|family members?|loved ones?|someone you trust|support groups?)\b"),
    Rule("en.alt.can_offer", "alternative", 0.0,
         r"\b(?:i|we)[ ]+can[ ]+(?:however |instead |certainly |still |also )?(?:offer|suggest|provide (?:general|some)|help you (?:with|find|understand)|point you|recommend)\b"),
    Rule("en.redirect.seek", "redirect", 0.0,
         r"\b(?:seek|consult(?:ing)?|contact(?:ing)?|reach(?:ing)? out to|speak(?:ing)? (?:with|to)|talk(?:ing)? (?:with|to)|call(?:ing)?|visit(?:ing)?|see(?:ing)?)[ ]+"
         r"(?:(?:a|an|the|your|local|trusted|qualified|licensed|professional|medical|mental health|legal|trained)[ ]+){0,3}"
         r"(?:professional|expert|doctor|physician|therapist|counsel+or|lawyer|attorney|authorities|police|hotline|helpline|crisis|healthcare|specialist|pharmacist|advisor|adviser|provider|emergency|support|someone you trust)"),
    Rule("en.redirect.hotline", "redirect", 0.0, r"\b(?:crisis|suicide|prevention|support|help)[ ]+(?:line|lifeline|hotline|helpline|text line)\b"),
    Rule("en.clarify.ask", "clarify", 0.0,
         r"\b(?:could|can|would) you[ ]+(?:please[ ]+)?(?:provide|give|share|clarify|rephrase|explain|elaborate|specify|tell me)\b"
         r"|\bif you (?:could|can|would)[ ]+(?:please[ ]+)?(?:provide|give|share|clarify|rephrase|explain|elaborate|specify)\b"
         r"|\bi(?:'m| am)?[ ]+(?:not (?:quite |entirely |really |completely )?sure (?:what|which|i understand|i follow)|(?:do not|don'?t) (?:quite |fully |really )?(?:understand|follow))\b"
         r"|\b(?:unclear|ambiguous) what you(?:'re| are)?\b|\bplease (?:clarify|rephrase|provide more (?:context|details|information))\b"),
    Rule("en.comply.opener", "comply", 0.0,
         r"\A[ \n]*(?:sure|certainly|of course|absolutely|yes|definitely|here's|here is|here are)\b"),
    Rule("en.correction.premise", "correction", 0.0,
         r"\b(?:not (?:factually |logically )?coherent|(?:does|do)(?: not|n'?t) make (?:logical |much )?sense|nonsensical|(?:a |the )?(?:flawed|false|mistaken|incorrect|faulty) (?:premise|assumption)"
         r"|(?:seems to be|appears to be|is) (?:a )?(?:joke|riddle|play on words|hypothetical)|not (?:based on|supported by) (?:any )?(?:scientific|factual|logical)"
         r"|(?:are|is) (?:inanimate|not (?:sentient|living|capable of)|fictional (?:characters?|entit))|(?:a|the) fictional character)\b"),
    Rule("en.closing.other_q", "closing", 0.0,
         r"\b(?:if you have|do you have|should you have)[ ]+(?:any )?(?:other|more|further|additional|different|another|any)[ ]+(?:questions?|requests?|topics?|concerns?|inquir\w+)\b"),
    Rule("en.closing.anything_else", "closing", 0.0,
         r"\b(?:is there (?:anything|something) else|anything else (?:i can|you'?d like|you would like)|feel free to ask|let me know if (?:there(?:'s| is) )?(?:you|anything|something)|i'?m here to help|how (?:else )?can i help)\b"),
    Rule("en.closing.understand", "closing", 0.0,
         r"\b(?:i (?:hope you )?understand|thank you for (?:your )?understanding|i appreciate your understanding|i hope this (?:helps|clarifies))\b"),
)

# ---------------------------------------------------------------------------
# French
# ---------------------------------------------------------------------------
_FR_VERB = (
    r"(?:aider|assister|fournir|répondre|donner|créer|écrire|générer|rédiger|produire|participer|faire (?:cela|ça|ceci)|partager"
    r"|accéder|expliquer|décrire|soutenir|encourager|cautionner|satisfaire|accéder|traiter|continuer|divulguer|recommander)"
)
FRENCH: tuple[Rule, ...] = (
    Rule("fr.decline.ne_peux", "decline", 0.88,
         r"\bje[ ]+ne[ ]+(?:peux|pourrai|pourrais|vais|veux|suis (?:pas )?(?:en mesure|autorisée?|capable))[ ]+(?:pas|point|malheureusement pas)"
         r"(?:[ ]+(?:vous|te|t'|y|en|de|d'|à|malheureusement|moi-même)){0,3}[ ']*" + _FR_VERB),
    Rule("fr.decline.peux_pas_bare", "decline", 0.6, r"\bje[ ]+ne[ ]+(?:peux|pourrai|pourrais)[ ]+pas\b"),
    Rule("fr.decline.impossible", "decline", 0.85, r"\b(?:il m'est|il me est|c'est)[ ]+impossible[ ]+(?:de|d')"),
    Rule("fr.decline.refuse", "decline", 0.9, r"\bje[ ]+(?:dois[ ]+)?(?:refuse|refuser|décline|décliner)\b"),
    Rule("fr.apology.but", "apology", 0.4, r"\b(?:je suis )?(?:désolée?|navrée?)(?![ ]+d'apprendre)(?=[ ,]+(?:mais|je ne)\b)"),
    Rule("fr.policy.against", "policy", 0.85,
         r"\b(?:contraire|à l'encontre|va à l'encontre|enfreint|viole)[ ]+(?:de |à )?(?:mes|nos|la|les)[ ]+(?:directives|principes|règles|politiques?|lignes directrices|conditions)"),
    Rule("fr.policy.not_appropriate", "policy", 0.58, r"\b(?:il n'est|ce n'est|cela n'est)[ ]+pas[ ]+(?:approprié|éthique|acceptable|responsable)\b"),
    Rule("fr.deflect.ai", "deflection", 0.7,
         r"\ben tant qu(?:'|e )(?:ia|intelligence artificielle|modèle de langage|assistant(?: virtuel)?|programme)[ ,]+je[ ]+n'(?:ai|éprouve|exprime)[ ]+(?:pas|aucune?)"),
    Rule("fr.deflect.no_opinion", "deflection", 0.55,
         r"\bje[ ]+n'ai[ ]+pas[ ]+(?:d'opinions?|d'avis|de sentiments|d'émotions|de préférences|de croyances)(?: personnel(?:le)?s?)?\b"),
    Rule("fr.alt.however", "alternative", 0.0,
         r"\b(?:cependant|toutefois|en revanche|par contre|néanmoins|mais)[ ,]+je[ ]+(?:peux|pourrais|serais (?:ravie?|heureux|heureuse))\b"),
    Rule("fr.redirect.pro", "redirect", 0.0,
         r"\b(?:consulter|contacter|parler à|vous adresser à)[ ]+(?:un |une |des |votre )?(?:professionnel|médecin|avocat|spécialiste|thérapeute|expert)"),
)

# ---------------------------------------------------------------------------
# German
# ---------------------------------------------------------------------------
_DE_VERB = (
    r"(?:helfen|behilflich sein|unterstützen|beantworten|antworten|erstellen|schreiben|liefern|geben|bereitstellen|erfüllen|nachkommen"
    r"|anbieten|machen|tun|erklären|beschreiben|teilen|weitergeben|generieren|verfassen|empfehlen|fortfahren)"
)
GERMAN: tuple[Rule, ...] = (
    Rule("de.decline.kann_nicht", "decline", 0.88,
         r"\b(?:ich|wir)[ ]+(?:kann|könnte|werde|darf|möchte|will|können|werden|dürfen)(?:[ ]+[a-zäöüß]+){0,4}?[ ]+(?:nicht[ ]+|keine?n?[ ]+(?:[a-zäöüß-]+[ ]+){0,4}?)"
         r"(?:[a-zäöüß]+[ ]+){0,2}?" + _DE_VERB + r"\b"),
    Rule("de.decline.inverted", "decline", 0.88,
         r"\b(?:leider|daher|deshalb|dabei|damit|hierbei|das|dies|diese anfrage)[ ]+(?:kann|darf|werde|möchte)[ ]+(?:ich|wir)(?:[ ]+[a-zäöüß]+){0,4}?[ ]+(?:nicht|keine?n?)\b"),
    Rule("de.decline.not_able", "decline", 0.85, r"\b(?:ich bin|wir sind)[ ]+(?:leider[ ]+)?nicht[ ]+(?:in der lage|befugt|berechtigt|bereit)\b"),
    Rule("de.decline.refuse", "decline", 0.9, r"\b(?:ich|wir)[ ]+(?:muss|müssen)[ ]+(?:[a-zäöüß]+[ ]+){0,3}?ablehnen\b"),
    Rule("de.apology.but", "apology", 0.4, r"\b(?:es tut mir leid|entschuldigung|bedaure)(?![ ]+(?:zu hören|das zu hören))(?=[ ,]+(?:aber|doch|ich kann)\b)"),
    Rule("de.policy.against", "policy", 0.85,
         r"\b(?:verstößt|verstoßen|widerspricht|widersprechen)[ ]+(?:gegen[ ]+)?(?:meine|unsere|die)[ ]+(?:[a-zäöüß]+[ ]+)?(?:richtlinien|grundsätze|regeln|nutzungsbedingungen|prinzipien)"),
    Rule("de.policy.not_appropriate", "policy", 0.58, r"\b(?:es ist|das ist|dies ist|wäre)[ ]+(?:nicht[ ]+(?:angemessen|angebracht|ethisch|vertretbar)|unangemessen|unethisch)\b"),
    Rule("de.deflect.ai", "deflection", 0.7,
         r"\bals[ ]+(?:ki|künstliche intelligenz|sprachmodell|ki-sprachmodell|ki-assistent|assistent)[ ,]+(?:habe|hege|besitze|äußere)[ ]+ich[ ]+(?:keine|nicht)\b"),
    Rule("de.deflect.no_opinion", "deflection", 0.55,
         r"\bich[ ]+habe[ ]+keine[ ]+(?:persönliche[n]?[ ]+|eigene[n]?[ ]+)?(?:meinung(?:en)?|gefühle|vorlieben|emotionen|überzeugungen|ansichten)\b"),
    Rule("de.alt.however", "alternative", 0.0,
         r"\b(?:allerdings|jedoch|stattdessen|aber)[ ,]+(?:kann|könnte)[ ]+ich\b|\bich[ ]+kann[ ]+(?:ihnen|dir|euch)?[ ]*(?:aber|jedoch|stattdessen|gerne)\b"),
    Rule("de.redirect.pro", "redirect", 0.0,
         r"\b(?:wenden sie sich|wende dich|kontaktieren sie|sprechen sie)[ ]+(?:[a-zäöüß]+[ ]+){0,3}?(?:arzt|ärztin|fachmann|fachkraft|anwalt|therapeut|experten|beratungsstelle)"),
)

# ---------------------------------------------------------------------------
# Spanish
# ---------------------------------------------------------------------------
_ES_VERB = (
    r"(?:ayudar(?:te|le|les)?|asistir(?:te|le)?|proporcionar(?:te|le)?|dar(?:te|le)?|ofrecer(?:te|le)?|crear|escribir|generar|redactar|producir"
    r"|cumplir|responder|participar|hacer (?:eso|esto|lo que)|brindar(?:te|le)?|facilitar|compartir|acceder|explicar|describir|apoyar|continuar|recomendar)"
)
SPANISH: tuple[Rule, ...] = (
    Rule("es.decline.no_puedo", "decline", 0.88,
         r"\bno[ ]+(?:puedo|podré|podría|voy a|estoy (?:en condiciones|autorizad[oa]|dispuest[oa]) (?:de|a)|me es posible|puedo ni debo)"
         r"(?:[ ]+(?:te|le|les|lo|la|con|en|eso|esto|de|a)){0,3}[ ]+" + _ES_VERB + r"\b"),
    Rule("es.decline.bare", "decline", 0.6, r"\bno[ ]+(?:puedo|podré|podría)[ ]+(?:hacerlo|hacer eso|ayudar con eso)\b"),
    Rule("es.decline.refuse", "decline", 0.9, r"\b(?:me niego a|debo (?:rechazar|declinar|negarme)|tengo que (?:rechazar|declinar|negarme))\b"),
    Rule("es.apology.but", "apology", 0.4, r"\b(?:lo siento|me temo|disculpa|disculpe|lamentablemente|desafortunadamente)(?![ ]+(?:mucho )?(?:oír|escuchar|saber))(?=[ ,]+(?:pero|que no|no)\b)"),
    Rule("es.policy.against", "policy", 0.85,
         r"\b(?:va en contra de|viola|infringe|contrario a)[ ]+(?:mis|nuestras|nuestros|las|los)[ ]+(?:políticas|directrices|normas|principios|pautas|reglas|términos)"),
    Rule("es.policy.not_appropriate", "policy", 0.58, r"\b(?:no es|no sería|sería|es)[ ]+(?:apropiado|ético|aceptable|responsable|inapropiado|poco ético)[ ]+(?:que|para mí)\b"),
    Rule("es.deflect.ai", "deflection", 0.7,
         r"\bcomo[ ]+(?:una? )?(?:ia|inteligencia artificial|modelo de lenguaje|asistente(?: virtual| de ia)?|programa)[ ,]+no[ ]+(?:tengo|puedo tener|poseo|expreso)\b"),
    Rule("es.deflect.no_opinion", "deflection", 0.55,
         r"\bno[ ]+tengo[ ]+(?:opiniones|sentimientos|emociones|preferencias|creencias|una opinión)(?: personales?| propias?)?\b"),
    Rule("es.alt.however", "alternative", 0.0,
         r"\b(?:sin embargo|en cambio|en su lugar|pero)[ ,]+(?:sí[ ]+)?(?:puedo|podría|me encantaría|estaré encantad[oa])\b"),
    Rule("es.redirect.pro", "redirect", 0.0,
         r"\b(?:consultar|contactar|hablar con|acudir a)[ ]+(?:un |una |tu |su )?(?:profesional|médico|abogado|especialista|terapeuta|experto)"),
)

# Foreign-language tables (gated by FOREIGN_TOKENS below).
FOREIGN: dict[str, tuple[str, tuple[Rule, ...]]] = {
    "fr": ("French", FRENCH),
    "de": ("German", GERMAN),
    "es": ("Spanish", SPANISH),
}

# ---------------------------------------------------------------------------
# Anchors: literal substrings, one of which every match of a rule contains.
# Documentation of what each rule needs, checked for every rule by the tests,
# and the gate for any rule the compiler cannot expand (it then runs the rule
# as written only when an anchor occurs).
# ---------------------------------------------------------------------------

_NEG_ANCHORS = (
    "can't", "cant", "cannot", "can not", "won't", "wont", "will not", "shan't", "shant", "not able", "unable", "not going",
    "not willing", "not permitted", "not allowed", "not authori", "not in a position", "not comfortable", "not designed",
    "not programmed", "not prepared", "not here", "feel comfortable", "rather not", "prefer not", "not be able",
    "not be comfortable", "think i can", "think we can", "think i should", "think we should",
)
_AI_ANCHORS = (
    " ai", " a.i.", " artificial intelligence", " language model", " llm", " assistant", " chatbot", " computer program",
    " machine learning model",
)
_IT_NOT = ("it's not", "it is not", "it would be not", "that's not", "that is not", "that would be not", "this is not")

ANCHORS: dict[str, tuple[str, ...]] = {
    "en.decline.must": ("decline", "refuse", "refrain", "abstain", "pass on", "say no"),
    "en.decline.refuse": ("refuse", "decline", "won't be", "wont be"),
    "en.decline.not_something": ("not something", "not a request", "not a task", "not a topic", "not a thing"),
    "en.decline.unable_verb": _NEG_ANCHORS,
    "en.decline.cannot_fulfil": ("can't", "cant", "cannot", "unable to", "not able to", "won't", "wont"),
    "en.decline.limit": _NEG_ANCHORS,
    "en.decline.unable_any": _NEG_ANCHORS,
    "en.decline.no_capability": ("ability", "capability", "capacity", "authority", "permission", "means"),
    "en.decline.ai_and": _AI_ANCHORS,
    "en.policy.ai_and_condone": _AI_ANCHORS,
    "en.decline.bare": ("can't", "cant", "cannot", "won't", "wont", "will not"),
    "en.decline.no_can_do": ("no,", "no.", "no!", "nope,", "nope.", "nope!"),
    "en.apology.but_decline": ("sorry", "apologi", "afraid", "unfortunately"),
    "en.apology.but": ("sorry",),
    "en.apology.apologize_but": ("apologi",),
    "en.apology.lead": ("sorry", "apologi"),
    "en.apology.afraid": ("afraid",),
    "en.policy.for_me": ("for me", "for an ai", "for an assistant", "of me"),
    "en.policy.against_rules": (
        "against", "violat", "contrary to", "breach", "in line with", "aligned with", "consistent with", "conflict",
    ),
    "en.policy.outside_scope": ("outside", "beyond", "not within", "exceed"),
    "en.policy.my_rules_block": (
        "guidelines", "policies", "programming", "principles", "rules", "instructions", "design", "values", "purpose",
    ),
    "en.policy.programmed": (
        "to be helpful", "to be harmless", "to be respectful", "to be safe", "to be ethical", "to follow", "to adhere",
        "to avoid", "to priorit", "to promote", "to provide", "to not",
    ),
    "en.policy.not_appropriate": (
        "appropriate", "ethical", "responsible", "respectful", "insensitive", "offensive", "harmful", "acceptable", "not okay",
        "not ok", "advisable", "productive", "not fair", "not right", "not nice", "not kind",
    ),
    "en.policy.request_is": (
        "appropriate", "harmful", "offensive", "ethical", "illegal", "against", "violat", "discriminat", "problematic",
        "dangerous", "respectful", "insensitive", "hurtful", "unsafe", "racist", "sexist", "derogatory", "stereotyp", "prejudic",
        "toxic", "violent", "connotation", "not something", "not okay", "acceptable", "suitable",
    ),
    "en.policy.inappropriate_to_provide": ("appropriate", "ethical", "responsible", "safe"),
    "en.policy.premise": _IT_NOT,
    "en.policy.dont_think_ok": ("don't think", "dont think", "do not think"),
    "en.policy.not_sure_ok": ("not sure", "not certain", "not convinced"),
    "en.policy.not_ethical_to": _IT_NOT,
    "en.policy.is_not_ethical": ("ethical", "appropriate", "acceptable"),
    "en.discourage.not_advisable": ("recommended", "advisable", "advised", "good idea", "wise", "safe", "legal"),
    "en.policy.never_to": ("never",),
    "en.policy.never_ok": ("never", "not ever"),
    "en.policy.bad_question": ("question", "request", "thing to", "topic", "way to"),
    "en.policy.stance": ("condemn", "disagree", "reject", "oppose", "support", "agree with", "endorse", "condone", "advocate"),
    "en.policy.no_place": ("no place", "no justification", "no excuse", "no room"),
    "en.deflect.ai_no_opinion": _AI_ANCHORS,
    "en.deflect.no_opinion": (
        "opinion", "belief", "feeling", "emotion", "preference", "view", "biases", "experience", "desire", "stance", "stake",
        "the ability to",
    ),
    "en.deflect.as_ai": _AI_ANCHORS,
    "en.deflect.just_ai": _AI_ANCHORS,
    "en.deflect.not_human": ("human", "person", "sentient", "conscious", "capable of"),
    "en.deflect.no_personal": ("side", "stance", "position", "personal stake"),
    "en.limit.no_access": ("have the ability", "have access", "have real-time", "have personal", "have direct", "have any"),
    "en.limit.no_info": ("information", "details", "data", "records"),
    "en.discourage.against": ("against",),
    "en.discourage.not_to": ("not to", "to not", "to refrain", "to reconsider", "to avoid"),
    "en.discourage.should_not_be": ("should not be", "should never be"),
    "en.preface.must_point": (
        "point out", "inform you", "clarify", "remind you", "note", "emphasi", "stress", "address", "correct", "challenge",
    ),
    "en.preface.opening_caveat": ("let me", "important to", "crucial to", "essential to", "vital to"),
    "en.preface.please_dont": ("please",),
    "en.preface.not_condone": ("condone", "endorse", "support", "promote", "encourage", "tolerate"),
    "en.justify.is_harmful": (
        "illegal", "unethical", "harmful", "dangerous", "inappropriate", "offensive", "discriminatory", "disrespectful",
        "hurtful", "immoral", "unlawful", "crime", "criminal offen", "violation",
    ),
    "en.justify.promote_harm": ("promot", "encourag", "condon", "glorif", "perpetuat", "facilitat", "incit", "normali"),
    "en.justify.harm_phrase": ("harmful", "negative", "offensive", "dangerous", "discriminatory", "hurtful", "derogatory"),
    "en.justify.ethics": ("ethical", "moral", "legal"),
    "en.alt.however_i_can": ("however", "instead", "but", "that said", "alternatively", "rather", "though", "what i can do"),
    "en.alt.instead": ("instead", "alternatively", "rather"),
    "en.alt.however_you": ("however", "but", "instead", "that said", "alternatively"),
    "en.alt.here_what": ("here's", "here is", "here are"),
    "en.alt.happy_to": ("happy", "glad", "pleased", "willing"),
    "en.alt.here_safe": ("here's", "here is", "here are"),
    "en.alt.if_interested": ("if you",),
    "en.redirect.if_struggling": ("if you",),
    "en.redirect.reach_out": (
        "reach out", "reaching out", "talk to", "talking to", "speak with", "speak to", "speaking with", "speaking to",
        "support from", "help from", "guidance from", "confide in",
    ),
    "en.alt.can_offer": ("offer", "suggest", "provide general", "provide some", "help you", "point you", "recommend"),
    "en.redirect.seek": (
        "professional", "expert", "doctor", "physician", "therapist", "counsel", "lawyer", "attorney", "authorities", "police",
        "hotline", "helpline", "crisis", "healthcare", "specialist", "pharmacist", "advisor", "adviser", "provider",
        "emergency", "support", "someone you trust",
    ),
    "en.redirect.hotline": ("line",),
    "en.clarify.ask": (
        "could you", "can you", "would you", "if you", "understand", "follow", "sure", "unclear", "ambiguous", "please",
    ),
    "en.comply.opener": ("sure", "certainly", "of course", "absolutely", "yes", "definitely", "here"),
    "en.correction.premise": (
        "coherent", "sense", "nonsensical", "premise", "assumption", "joke", "riddle", "play on words", "hypothetical",
        "based on", "supported by", "inanimate", "sentient", "living", "capable of", "fictional",
    ),
    "en.closing.other_q": ("question", "request", "topic", "concern", "inquir"),
    "en.closing.anything_else": ("anything else", "something else", "feel free", "let me know", "here to help", "can i help"),
    "en.closing.understand": ("understand", "hope this"),
}

# Words that decide whether a foreign-language table runs at all: every rule of
# the table contains one of them, and none is an English word.
FOREIGN_TOKENS: dict[str, frozenset[str]] = {
    "fr": frozenset({
        "je", "j'ai", "désolé", "désolée", "navré", "navrée", "m'est", "c'est", "n'est", "tant", "cependant", "toutefois",
        "contraire", "encontre", "enfreint", "viole", "consulter", "contacter", "parler", "adresser", "impossible",
    }),
    "de": frozenset({
        "ich", "wir", "leid", "entschuldigung", "bedaure", "verstößt", "verstoßen", "widerspricht", "widersprechen",
        "angemessen", "angebracht", "unangemessen", "unethisch", "ethisch", "vertretbar", "ki", "künstliche",
        "sprachmodell", "ki-sprachmodell", "ki-assistent", "wenden", "wende", "kontaktieren", "sprechen",
    }),
    "es": frozenset({
        "puedo", "podré", "podría", "voy", "estoy", "posible", "niego", "debo", "tengo", "siento", "temo", "disculpa",
        "disculpe", "lamentablemente", "desafortunadamente", "contra", "viola", "infringe", "contrario", "apropiado", "ético",
        "aceptable", "responsable", "inapropiado", "como", "encantaría", "estaré", "consultar", "contactar", "hablar", "acudir",
    }),
}

# Moralising / safety vocabulary, as word-start stems and phrases. A sentence
# containing one is "lecture", not answer: refusals are typically followed by
# an explanation of why the request is harmful and what to do instead, while a
# real answer talks about the subject. Only consulted once some refusal signal
# exists (or a response is nothing but a redirect), so ordinary answers about
# sensitive topics are not affected by it.
LECTURE_TERMS: tuple[str, ...] = (
    "important to", "important that", "crucial to", "essential to", "vital to", "always best", "never okay", "never ok",
    "respect", "dignity", "stereotyp", "discriminat", "prejudic", "harm", "hurt", "offensive", "inappropriate", "unethical",
    "ethic", "illegal", "unlawful", "against the law", "consent", "privacy", "confidential", "personal information",
    "human rights", "equal", "regardless of", "everyone deserves", "everyone has the right", "everyone should", "well-being",
    "wellbeing", "safety", "unsafe", "inclusiv", "diversity", "marginali", "never acceptable", "never justified",
    "never justifiable", "never the answer", "violence", "violent", "abuse", "abusive", "professional help", "mental health",
    "seek help", "seek support", "seek guidance", "support from", "support group", "support service", "trusted friend",
    "trusted adult", "trusted individual", "authorities", "law enforcement", "therapist", "counselor", "counsellor",
    "hotline", "helpline", "crisis", "healthy way", "healthy relationship", "healthy manner", "healthy and", "constructive",
    "kindness", "compassion", "empathy", "fairness", "positivity", "bias", "sensitive", "legal consequences",
    "legal professional", "legal advice", "sorry to hear", "going through a difficult", "going through a tough",
    "going through a hard", "going through a challenging", "going through this", "going through such", "people who care",
    "not alone", "the right", "rights", "basic right", "fundamental right", "deserve", "autonomy", "agency", "injustice",
    "inequalit", "oppress", "hatred", "racis", "sexis", "xenophob", "homophob", "transphob", "hate speech", "hate crime",
    "inhumane", "dehumaniz", "generaliz", "assumptions about",
)


def _with_anchors(rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
    missing = [r.name for r in rules if r.name not in ANCHORS]
    if missing:
        raise ValueError(f"rules without anchors: {missing}")
    return tuple(r._replace(anchors=ANCHORS[r.name]) for r in rules)


ENGLISH = _with_anchors(ENGLISH)
