"""Figurative phrases a punchline can hinge on: "sealed the deal", "let off steam", "cold feet".

A dad joke often answers a literal question with an idiom whose literal reading fits the
question (the envelope "sealed the deal", the kettle "lets off steam").  This is a lexicon of
common English idioms and phrasal expressions written for sparring (not copied from a list); a
phrase matches on word stems, ``*`` stands for one or two words ("over * head" matches "over your
head", "under * pressure" matches "under too much pressure").  It knows only the phrases it lists.  Used by ``wordplay.py`` (evidence kind ``idiom``).
Exercised by ``pytest tests/evaluators/test_wordplay.py -k idiom``.
"""

from __future__ import annotations

import functools

IDIOMS = """
seal the deal | let off steam | blow off steam | over * head | in over * head | pain in the neck
cold feet | put * down | step * up | fall for | fallen for | part ways | go separate ways
break the ice | spill the beans | in hot water | hit the road | hit the hay | hit the sack
on the ball | under the weather | under pressure | crack up | cracked up | fold under pressure
piece of cake | bite the dust | call it a day | cut corners | get the point | see the point
no point | beside the point | make a point | draw the line | draw a crowd | drive * crazy
drive * up the wall | go bananas | go nuts | go to pieces | fall apart | fall to pieces
have a ball | have a blast | on a roll | on fire | on thin ice | out of * league
out of shape | out of order | out of * mind | out of this world | over the moon | play it cool
raise the bar | ring a bell | rock the boat | run out of | running late | save face
shake a leg | take a hike | take a rain check | take it easy | the last straw | tie the knot
tongue tied | tongue was tied | turn over a new leaf | under * skin | up in the air | up to scratch
stack up | wrap up | wrapped up | mixed up | all mixed up | fed up | cheer up | lighten up
chill out | pass out | burn out | burned out | burnt out | stressed out | spaced out | worn out
hang in there | hang out | hammer out | hammering out | let * down | let * go | let it go | get a grip | get the picture
get * drift | hold * horses | keep * cool | lose * cool | lose * head | lose * touch | lost touch
keep in touch | stay in touch | keep an eye on | all ears | all thumbs | all heart | big cheese
in a pickle | in a jam | in the dark | in the loop | out of the loop | in the red | in the black
behind bars | break a leg | cost an arm and a leg | jump the gun | jump ship | miss the boat
make ends meet | make a splash | make waves | nip * in the bud | on the same page | pull * leg
pull * weight | pull strings | put a sock in it | rub * the wrong way | see eye to eye
sit tight | skate on thin ice | spill the tea | stick out | sticks out | stand out | stands out
take * for granted | take the cake | throw in the towel | up * sleeve | under the table
wet blanket | when pigs fly | whole nine yards | wild goose chase | you can say that again
no sense of direction | lost in space | grow on * | grew on * | grows on * | branch out
turn the tables | turn a blind eye | hit a nerve | hit the spot | hit the books | hit a wall
rise to the occasion | rising star | reach for the stars | bring home the bacon | butter * up
half baked | in a nutshell | bread and butter | cool as a cucumber | couch potato | top banana
the apple of * eye | full of beans | spill the milk | cry over spilled milk | sour grapes
take a dip | take a bow | take a stand | take a seat | take a break | break the bank
bear with me | bearing with | make a bolt for it | let the cat out of the bag | raining cats and dogs
hold * tongue | bite * tongue | on the nose | face the music | know the drill | learn the ropes
show the ropes | a sight for sore eyes | out of * element | bounce back | bounce off | back to square one
high and dry | short circuit | short fuse | blow a fuse | light bulb moment | bright idea | on the same wavelength
get to the bottom of | bottom line | come clean | come a long way | come around | come full circle
make a move | make the first move | move on | moved on | kick the bucket | on the rocks | rock bottom
hot potato | take the cake | took the cake | piece of me | bugs me | bugs them | bugging me
clear as day | heavy subject | set in stone | cut to the chase | pick up the slack | picked up the slack
fall into place | work out | feel down | feeling down | feeling * down | a little down | harping on | come down with | coming down with | up to something
blow * top | on the house | see right through | light up * life | get even | leg to stand on
let * hair down | where * left off | take me to * leader | flip out | flipped out | make some change
get over it | lost at sea | head above water | under * pressure | turned down | turn * down
fall asleep | spring in * step | room for improvement | rooms for improvement | set things up | washed up
hang around | off the ground | take * for granite | crack * up | cracked * up
spout off | spouting off | pick on | picking on | ran out of juice | runs out of juice | stir up | stirring up
stir up trouble | hold water | wave goodbye | go with the flow | play it by ear | lend an ear
keep * eyes peeled | eyes peeled | keep an eye out | teacher's pet | catch flies | rest * case
in ruins | lose focus | lost focus | lose * focus | snap at | snapping at | lost interest | lose interest
flushed with success | stay on track | stayed on track | fired up | one step at a time | a good grip
skip a beat | toe the line | go back for seconds | went on strike | go on strike | stay in * lane
break * record | breaking records | go downhill | going downhill | two's company | frost bites
go for a spin | had a blast | beats me | that beats me | caught a virus | lost * contacts
recharge * batteries | a real connection | nailed it | heavy heart | on edge | cold shoulder
break the mold | break even | in the same boat | roll with the punches | out of juice
bad back | time flies | kill time | wound up | hands down | under wraps | zip through | zipped through
let it slide | bottom of the barrel | cream of the crop | bitter end | make a stink | earn * stripes
a stage * going through | just a phase | going through a phase | lift * spirits | sweeping changes
whirlwind romance | dropping by | drop by | squash * dreams | clam up | clammed up | past * prime
burst * bubble | too many issues | strung along | string * along | a good deal | true colors
strike up | full of hot air | blowing * own horn | blow * own horn | lost * kick | on the nose
keep * cool | keep it cool | play it cool | steal the show | stole the show | bring the house down
get a kick out of | get a charge out of | makes * blood boil | spill * guts | out of the woods
bark up the wrong tree | barking up the wrong tree | barking mad | dog tired | dog days | raining cats
hold * breath | take * breath away | catch * breath | go with the grain | against the grain
sour note | strike a chord | struck a chord | face the music | change * tune | music to * ears
hit the right note | call the shots | call it quits | down to earth | over the hill | under the sea
a drop in the bucket | ride the wave | make a splash | fish out of water | plenty of fish
hold * horses | horse around | from the horse's mouth | cash cow | till the cows come home
the bee's knees | busy as a bee | ants in * pants | butterflies in * stomach | night owl | world peace | off on a tangent | on so many levels | on many levels | on the job | strapped for cash | saw that coming | see * coming | trouble with the law | order in the court | santa claus | past its prime | high seas | can't beat | so good | for granted | lost at sea
""".replace("\n", " | ")


def _stem(token: str) -> str:
    """The word's stem for matching an idiom's words, an -er ending kept: it makes other words
    ("butter" is not "but", "better" not "bet", "matter" not "mat") more often than inflections."""
    from sparring.evaluators.wordplay import stem

    w = token.lower().replace("'s", "")
    w = w[:-1] if w.endswith("ers") else w
    return w if w.endswith("er") else stem(w)


@functools.lru_cache(maxsize=1)
def _patterns() -> tuple[tuple[str, tuple[str, ...]], ...]:
    out = []
    for phrase in IDIOMS.split("|"):
        phrase = " ".join(phrase.split())
        if phrase:
            out.append((phrase, tuple("*" if t == "*" else _stem(t) for t in phrase.split())))
    return tuple(out)


def find_idiom(tokens: list[str]) -> str | None:
    """The first listed idiom found in ``tokens`` (normalized words), or None."""
    found = find_idioms(tokens)
    return found[0] if found else None


def find_idioms(tokens: list[str]) -> list[str]:
    """Every listed idiom found in ``tokens``, in the order they start."""
    stems = [_stem(t) for t in tokens]
    by_first = _patterns_by_first_word()
    out: list[str] = []
    for i, s in enumerate(stems):
        for phrase, pattern in by_first.get(s, ()):
            if phrase not in out and _matches(pattern, stems, i):
                out.append(phrase)
    return out


@functools.lru_cache(maxsize=1)
def _patterns_by_first_word() -> dict[str, tuple[tuple[str, tuple[str, ...]], ...]]:
    table: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for phrase, pattern in _patterns():
        table.setdefault(pattern[0], []).append((phrase, pattern))
    return {k: tuple(v) for k, v in table.items()}


def _matches(pattern: tuple[str, ...], stems: list[str], at: int) -> bool:
    """``pattern`` matches ``stems`` from ``at``; ``*`` takes one or two words."""
    if not pattern:
        return True
    if at >= len(stems):
        return False
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        return _matches(rest, stems, at + 1) or (at + 1 < len(stems) and _matches(rest, stems, at + 2))
    return head == stems[at] and _matches(rest, stems, at + 1)
