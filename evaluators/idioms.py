"""Figurative phrases a punchline can hinge on: "sealed the deal", "let off steam", "cold feet".

A dad joke often answers a literal question with an idiom whose literal reading fits the
question (the envelope "sealed the deal", the kettle "lets off steam").  This is a lexicon of
common English idioms and phrasal expressions written for sparring (not copied from a list); a
phrase matches on word stems, ``*`` stands for any one word ("over * head" matches "over your
head").  It knows only the phrases it lists.  Used by ``wordplay.py`` (evidence kind ``idiom``).
Exercised by ``pytest tests/evaluators/test_joke_validator.py -k idiom``.
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
hang in there | hang out | let * down | let * go | let it go | get a grip | get the picture
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
""".replace("\n", " | ")


def _stem(token: str) -> str:
    from sparring.evaluators.wordplay import stem

    return stem(token)


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
    stems = [_stem(t) for t in tokens]
    for phrase, pattern in _patterns():
        n = len(pattern)
        for i in range(len(stems) - n + 1):
            if all(p == "*" or p == s for p, s in zip(pattern, stems[i : i + n])):
                return phrase
    return None
