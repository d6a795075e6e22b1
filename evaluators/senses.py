"""What words are *about*: semantic fields a pun's subject links to, and words with two senses.

A dad joke usually ties its punchline to the question's subject: the pig "hogs" the ball, the
baker "kneads" you, the astronaut "needs space", the ghost likes "I scream".  The wordplay check
(``wordplay.py``) needs to know that "hog" belongs with "pig" and that "hog" also means "take
more than your share".  This module holds two hand-written lexicons (written for sparring from
general English knowledge, not copied from a list; built from the kinds of punchline words the
training corpus uses, then widened to whole fields so unseen topics are covered too):

- ``FIELDS``: semantic fields, one per line: the words that belong to one subject ("bakery:
  bread baker bake dough loaf knead rise yeast crust ...").  Two words are *linked* when they
  share a field (matched on crude stems, so "pigs"/"pig", "baked"/"bake").
- ``TWO_SENSES``: words English uses in two unrelated senses (bank, bark, charge, current, date,
  hog, rise, roll, patient, space, ...).  A listed word that is linked to the joke's subject is
  the classic double meaning.

It knows only what it lists.  Used by ``subject_puns.py`` (evidence kinds ``subject_double``,
``subject_sound``).  Exercised by ``pytest tests/evaluators/test_wordplay.py -k "senses or subject"``.
"""

from __future__ import annotations

import functools

FIELDS = """
bakery: bread baker bakery bake loaf loaves knead dough rise yeast crust crumb crumbs roll bun buns oven flour slice toast sourdough bagel muffin croissant rye wheat baguette butter jam toaster batter whisk pastry pie cake cupcake cookie doughnut donut sprinkle sprinkles icing frosting dessert sweet sugar filling fillings
cheese: cheese cheddar gouda brie swiss mozzarella parmesan feta grate grater cheesy milk dairy cracker mouse holes nacho nachos
pizza: pizza slice crust topping toppings sauce saucy cheese pepperoni oven delivery dough
eggs: egg eggs shell yolk crack cracked hatch chick chicken hen omelet scramble scrambled fried boil boiled poach poached breakfast
coffee: coffee mug cup brew brewed bean beans espresso latte cafe caffeine decaf grind grounds roast barista perk tea pot kettle ground grounded
tea: tea teapot kettle cup brew steep spout spouting leaf leaves herbal bag biscuit
cookies: cookie cookies biscuit chip chips crumb crumbs crumble crummy wafer oreo dough baked jar milk
fruit: fruit fruity apple apples banana bananas peel peeled peeling split bunch bunches grape grapes vine wine raisin orange lemon lime zest juice juicy pear pears peach plum prune pit pits berry berries cherry melon cantaloupe honeydew watermelon core seed seeds tree pick picking picked ripe rotten jam kiwi mango pineapple coconut date dates fig avocado appeal appealing
vegetables: vegetable vegetables veggie potato potatoes tater spud fries chips mash mashed peel peeled eye eyes corn ear ears cob kernel shucks husk stalk stalked pea peas pod carrot carrots beet beets turnip lettuce cabbage patch broccoli celery onion onions garlic tomato tomatoes ketchup squash pumpkin pumpkins cucumber pickle zucchini radish leek spinach bean beans sprout sprouts root roots leaf garden salad dressing head heads
soup: soup stew stir stirring spoon bowl broth chowder noodle noodles pot ladle simmer boil chicken leek leeks
pasta: pasta spaghetti noodle noodles macaroni ravioli lasagna penne sauce meatball meatballs italian tangle untangle impasta filled filling stuffed
cake: cake cakes cupcake birthday candle candles icing frosting slice piece tier tiers layer bake baker batter sweet dessert party wedding
sweets: candy sweet sweets sugar chocolate bitter caramel gum bubblegum lollipop lolly marshmallow toffee fudge jelly bean dessert donut doughnut sundae sprinkles ice cream icecream scoop cone popsicle vanilla mint filling
milk: milk dairy cow cream creamy shake milkshake butter churn bottle carton yogurt cheese moo udder
meat: meat ham bacon pork chop steak beef burger hamburger sausage hot dog turkey drumstick drumsticks grill barbecue jerky rib ribs
food: food eat ate eating meal lunch launch dinner breakfast brunch snack snacks menu chef cook cooking kitchen restaurant waiter diner hungry appetite taste tasty flavor salt salty pepper spice spicy sauce dish plate bowl fork knife spoon oven stove grill fry fried roast recipe serve served serving sandwich stew soup thyme herb herbs sage basil oregano parsley bite bites
drink: drink drinks soda pop juice water wine beer cider champagne bubbly cocktail toast bar bartender glass cup straw thirsty sip punch
dogs: dog dogs puppy puppies pup pooch hound doggie doggy bark barking woof wag tail fetch leash collar bone bones paw paws pet vet kennel fleas sit stay beg breed terrier poodle dachshund ruff howl hot
cats: cat cats kitten kittens kitty meow purr purrfect claw claws paw paws whisker whiskers litter mouse mice fur feline lion tiger cheetah cheetahs hiss
farm: farm farmer barn field fields tractor cow cows moo udder milk calf bull pig pigs hog hogs swine piglet pork oink mud sty pen pigpen sheep lamb baa wool ewe goat kid horse horses pony foal hay stable saddle gallop neigh hoarse chicken hen rooster chick egg eggs crop crops harvest plow seed corn scarecrow cabbage patch horn horns beef hoe hoedown fowl shear shears
horses: horse horses pony hoarse stable stables saddle gallop neigh mane hoof hooves foal colt mare rein reins jockey race track trot carriage cart
ocean: ocean sea seas beach shore sand wave waves waved tide current surf salt salty fish whale shark dolphin porpoise octopus squid crab crabs lobster clam clams oyster oysters shell shells shellfish mussel mussels coral reef seaweed boat ship sail sailor anchor dock pier port deep sink sank island seagull seagulls bay fluke fin fins tuna cod sole salmon eel scale scales gill gills school schools net mermaid mermaids
fish: fish fishy fishing fisherman angler hook line bait rod reel net school schools scale scales fin fins gill gills tank sea ocean river lake pond swim swims swimming cod tuna salmon sole trout bass carp catfish goldfish shark whale eel bank riverbank stream current catch caught
birds: bird birds fly flies flying wing wings feather feathers beak nest egg tweet chirp tweet owl hoot hoo parrot penguin eagle hawk crow raven robin duck ducks quack bill goose chicken turkey pigeon swan flock seagull pelican flamingo peacock ostrich puffin woodpecker migrate perch down fowl paws
insects: bug bugs insect insects bee bees hive honey buzz sting stinger wasp ant ants antique fly flies mosquito spider spiders web website caterpillar butterfly moth cocoon beetle ladybug cricket grasshopper worm worms snail snails slug termite flea fleas tick larva crawl stick sticky
reptiles: snake snakes hiss python boa cobra viper scale scales slither lizard frog frogs toad croak ribbit tadpole lily pad turtle turtles tortoise shell snapping crocodile alligator dinosaur dinosaurs rex fossil rattle rattled rattler rattlesnake
wild animals: animal animals zoo lion lions roar pride mane tiger tigers stripes zebra zebras giraffe neck elephant trunk tusk ivory monkey monkeys ape gorilla banana kangaroo hop hops jump jumpy pouch bear bears cub grizzly panda koala sloth fox wolf howl deer doe buck moose rabbit bunny hare rhino hippo camel hump skunk stink raccoon squirrel nut nuts nutty acorn bat bats cave hang hanging mouse rat beaver dam otter llama alpaca walrus tusk seal whale jumpy leap leaping paw paws
body: body bone bones skeleton skull spine back neck head heart beat brain mind stomach gut guts belly arm arms leg legs hand hands palm finger fingers thumb toe toes foot feet heel sole ankle knee hip hips elbow shoulder nose smell smells eye eyes ear ears mouth lip lips tongue tooth teeth tongue hair skin blood vein nerve nerves muscle lungs breath sneeze cough hiccup puff puffing panting joint joints
health: doctor doctors nurse patient patients patience hospital clinic medicine pill pills prescription cure heal sick ill cold flu fever virus germ germs cough sneeze shot vaccine operation surgeon surgery stitches cast dentist tooth teeth filling fill cavity crown crowned root roots drill brace braces floss gums checkup pulse temperature thermometer pain ache therapy therapist
jobs: job jobs work worker career office boss promotion promoted fired hire hired quit retire raise salary paycheck wage employee manager meeting deadline interview resume business company
baker: baker bakery bread dough knead kneaded loaf loafing rise oven flour bun roll crust yeast
plumber: plumber pipe pipes leak drain flush flushed toilet sink faucet tap water wrench clog
mail: mail mailman post postman letter letters stamp stamps envelope package parcel deliver delivered deliver delivery address seal sealed stick sticky stuck
teacher: teacher teachers school schools class classes classroom student students pupil lesson lessons homework test tests exam grade grades mark marks principal recess desk chalk board blackboard ruler pencil pen paper book books study studying learn smart bright clever report card
police: police cop cops officer detective clue clues case crime criminal arrest arrested jail prison bars cell thief steal stole stealing robber rob mug mugged lawyer judge court trial sentence fine guilty witness evidence fingerprint undercover spy spies trouble law plant planted
judge: judge court trial case lawyer jury order gavel sentence appeal verdict law rest
fire: fire fires fired firefighter fireman flame flames burn burned burnt smoke hot heat spark sparks blaze lit light match matches ash ashes campfire log logs hose alarm wick wicks candle candles wax
library: library librarian book books shelf shelves page pages chapter read reading story novel cover spine bookmark author write writer print quiet silence
space: space astronaut astronauts rocket rockets launch blast orbit moon stars star planet planets comet meteor galaxy sun mars alien aliens ufo saucer saucers asteroid gravity telescope universe shuttle eclipse crater atmosphere
hair: hair barber haircut cut trim shave beard mustache comb brush curl curly bald wig salon shampoo
money: money cash dollar dollars bill bills coin coins cent cents change bank banks banker loan interest rich poor wealthy broke debt pay paid price cost buy spend save saving savings dough bread wallet purse check account teller
art: art artist painter paint painting brush canvas coat draw drawing sketch color colors colour picture frame framed gallery museum statue sculpture granite marble pen pens
camera: camera photo photos photographer picture pictures snap snapping shoot shot lens focus flash film develop negative zoom reel reels film
magic: magic magician trick tricks wand hat rabbit card cards spell disappear vanish illusion wizard witch sorcerer
school: school schools class classes student teacher lesson test grade grades homework principal study smart talk talked talking detention
math: math maths number numbers count counting add addition subtract division divide multiply multiplication fraction fractions decimal equal sum problem problems solve solution triangle angle angles right acute obtuse circle square pi geometry algebra even odd table tables calculator zero one two three four eight ten seven nine tangent tangents
history: history historian past ancient king queen knight knights castle pharaoh mummy pyramid date dates war battle empire
geography: geography map maps country countries globe continent compass north south east west latitude longitude border capital city russia chile hungary turkey greece wales point pointing
chemistry: chemistry chemist science scientist lab experiment element elements atom atoms molecule acid base solution react reaction sodium nitrate formula beaker table periodic
physics: physics physicist light gravity energy force mass speed motion photon electron atom magnet magnetic attractive attract current electric
science: science scientist scientists chemistry physics biology lab experiment reaction reactions solution solutions element elements atom atoms cell cells division
cycling: bicycle bicycles bike bikes cycle cycling cyclist tire tires tired wheel wheels pedal pedals chain spoke spokes ride helmet
royalty: royal royalty king kings queen queens prince princess crown crowned throne castle palace ruler rule rules reign knight
biology: biology cell cells amoeba organism gene genes plant plants division grow growth dna
spelling: letter letters alphabet spell spelling spelled word words a b c d e i o u c's cs sea seas bee tea pea
sports: sport sports game games team coach player players play win lose score goal ball field court match race run runner track medal trophy champion try trying tie tied score
soccer: soccer football goal kick kicking dribble dribbling pass header field pitch net
baseball: baseball bat bats ball pitch pitcher catch catcher base bases home plate plates run runs fan fans stadium strike strikes out inning glove mitt shortstop steal stealing
basketball: basketball ball hoop hoops dunk dunking court dribble pass shot shoot net travel traveling rebound
golf: golf golfer course club clubs hole holes tee fore par putt green wedge caddy swing driver drive driving driver
tennis: tennis racket court net serve love match ball set
bowling: bowling bowler pin pins strike strikes spare lane alley ball gutter
running: running runner race run track marathon sprint record records lap finish line pace
swimming: swimming swimmer swim pool lap dive water float stroke
boxing: boxing boxer punch punches ring glove gloves fight fighter knockout round booking
skiing: skiing skier ski slope slopes snow downhill lift
weather: weather rain raining rainy drop drops raindrop shower showers cloud clouds cloudy storm storms thunder lightning strike wind windy breeze sun sunny snow hail fog forecast cold hot warm chilly freezing hurricane tornado whirlwind spin rainbow colors degree degrees temperature heat meteorologist weatherman forecaster mist misty
snow: snow snowman snowmen snowflake flakes frost frosty frosted ice icy icicle icicles freeze frozen cold chilly winter sled melt
sky: moon stars star sun sky cloud clouds light full shine outshine night dark twinkle eclipse meteor shower showers degree degrees heat hot
music: music musician song songs sing singer note notes scale scales chord chords key keys tune band drum drums drummer beat beats sticks guitar string strings pick picking piano pianist violin fiddle trumpet horn harp flute opera concert bass treble rap wrap rhythm rock pop record records flat sharp major minor
computers: computer computers laptop keyboard mouse screen byte bytes megabytes chip chips microchips virus windows app apps program code bug bugs hard drive disk data memory internet web website online log router wifi network connection download upload click cloud crash reboot driver drivers
phones: phone phones call ring text contact contacts screen battery charge charger app
robots: robot robots machine battery batteries charge recharge circuit wire wired metal bolt bolts nut nuts gear gears
tools: tool tools hammer nail nails nailed screw screwdriver bolt bolts nut nuts wrench grip drill saw ladder step steps toolbox tape glue tape stick stuck sticky
skeleton: skeleton skeletons bone bones skull spine ribs body nobody grave
family: family dad father mom mother parent parents son daughter baby kid kids brother sister grandpa grandma uncle aunt cousin home house mommy daddy
halloween: halloween ghost ghosts boo spirit spirits haunt haunted scare scary costume pumpkin witch witches broom spell vampire vampires blood fang coffin bat bats mummy mummies zombie zombies monster monsters skeleton candy trick treat drink drinking bite bites
christmas: christmas santa claus reindeer sleigh elf elves present presents gift gifts tree ornament chimney stocking snow snowman carol jingle bells
thanksgiving: thanksgiving turkey gobble stuffing stuffed pie cranberry feast drumstick drumsticks
love: love valentine heart hearts date dating romance romantic kiss hug crush attract attractive attraction marry married wedding ring relationship break breakup
party: party parties celebrate celebration balloon balloons cake dance dancing dj music fun guest guests invite invited plan planet blast lit deflated ball
ocean life: whale dolphin porpoise shark octopus arm arms armed tentacle tentacles squid jellyfish starfish seahorse walrus seal narwhal
boats: boat boats ship ships sail sailor sailing dock pier port anchor captain deck row oar canoe kayak paddle sea seas pirate pirates submarine sink
trees: tree trees wood woods forest log logs leaf leaves branch branches root roots bark trunk lumberjack pine oak maple acorn sap
plants: plant plants flower flowers petal petals bud buds bloom blossom rose roses daisy stem seed seeds garden gardener gardening soil dirt grow growing growth water pot weed leaf sunflower mushroom mushrooms fungi cactus
cars: car cars auto mechanic engine tire tires wheel wheels brake brakes gas fuel oil oily drive driver driving road garage horn exhaust park parking license seat seatbelt flat
trains: train trains track tracks rail railway station conductor engine caboose ticket sidetracked loco locomotive
planes: plane planes airplane airport pilot fly flight wing wings high higher land landing takeoff sky cloud seatbelt seatbelts
buses: bus buses driver stop stops route ride seat exhaust exhausted
clothes: clothes clothing shirt pants jeans dress skirt sock socks shoe shoes boot boots sneaker sneakers hat hats cap caps scarf scarves coat jacket zip zipper button belt tie glove gloves mitten sweater wear suit tuxedo pajamas fashion laundry wash washed iron ironing sew sewing tailor thread needle fabric wool cotton strap strapped sole soles heel heels lace laces seam seams
furniture: chair chairs table tables bed beds couch sofa desk lamp shelf drawer drawers cabinet leg legs back arm arms seat cushion pillow blanket sheet sheets mattress rug
time: time clock clocks watch watches hour hours minute minutes second seconds hand hands alarm tick tock tocked wind wound wound day days week weekend sunday monday morning night late early calendar date watch watches tell
books: book books page pages chapter cover spine read reader novel story bookmark author title shelf library
writing: pencil pencils pen pens ink eraser point pointless lead sharp sharpener paper write writing note notes
kitchen: kitchen fridge refrigerator freezer cool cold oven stove microwave pan pot fork knife knives spoon sharp plate dish dishes sink blender toaster kettle cup counter heat heated toaster toast
household: vacuum broom mop sweep sweeping dust towel soap bath shower sponge toothbrush toothpaste brush comb mirror reflection door doors hinge unhinged key keys lock unlock window windows fence post gate roof house room wall walls floor stairs ladder elevator lift light bulb lamp switch clear glass dry drying wet pane panes
earth: earth world ground rock rocks stone stones granite fossil fossils dig digging dirt soil mud volcano lava erupt top mountain mountains valley hill peak cliff cave river rivers bank banks stream flow lake waterfall glacier desert earthquake shaky shake
archaeology: archaeologist archaeology dig digging ruins ruin ancient bone bones fossil fossils history relic tomb
circus: circus clown clowns juggle juggler acrobat tightrope balance ringmaster tent lion tamer funny
detective: detective clue clues case mystery solve spy spies sneak sneakers undercover secret suspect crack cracked
garbage: trash garbage rubbish dump dumped bin can waste recycle
sky events: volcano eruption blow top lava hot
holidays: easter egg eggs bunny chocolate april fools march calendar new year champagne midnight
toys: toy toys kite kites string strung balloon balloons puzzle puzzles piece pieces yo-yo doll ball game games card cards deck deal dealt chess king queen pawn rook knight bishop check checkmate board cheat cheater cheaters cheating promote promoted light float helium pop popped
office: office printer paper copy copier issue issues stapler desk computer meeting email
sewing: sew sewing tailor needle thread stitch button fabric pattern seam seams
jewelry: jewel jewels jeweler diamond ring gem gems gold silver facet carat necklace
western: cowboy horse ranch rodeo lasso saddle boot boots hat sheriff dog doggie long
fantasy: wizard wizards witch witches dragon dragons knight knights castle sorcerer unicorn spell wand magic fairy giant
monsters: monster monsters zombie zombies vampire vampires ghost ghosts werewolf mummy mummies rotten dead grave grave unwind wrap
colors: color colors colour rainbow red blue green yellow orange purple pink black white gray grey
numbers: number numbers odd even count zero one two three four five six seven eight nine ten
museum: museum statue statues art gallery exhibit granite marble history
dance: dance dancer dancing ballet ballerina tutu music step steps spin twirl ball
martial arts: karate judo kick kicks chop chops belt black
volleyball: volleyball net set spike serve bump beach
hotel: hotel room guest guests lobby bed suite key keys stay
sky travel: travel trip vacation holiday luggage suitcase pack packing ticket passport flight hotel
insects2: caterpillar butterfly moth cocoon change changed phase ladybug spots spot
storms: storm storms hurricane tornado whirlwind wind winds hail rain thunder lightning strike cloud
electricity: electricity electric outlet plug socket charge charged current wire wires power battery bulb light switch shock shocked lightning
gym: gym exercise workout work out weights lift lifting fit fitness muscle muscles run treadmill sweat
sleep: sleep sleeping asleep sleepy bed pillow blanket nap dream dreams tired rest wake awake yawn night snore
emotions: sad happy mad angry upset cheerful glad lonely nervous scared afraid calm tired bored down blue tears cry crying
theater: theater theatre actor actress act stage play role scene drama curtain show audience applause comedy comedian reel reels film movie movies
pirates: pirate pirates ship sea seas treasure gold parrot plank captain arr hook eye patch c sail
mirror: mirror reflection reflect glass image look looking
bees: bee bees hive honey buzz sting maybe queen comb wax
elevator: elevator lift floor floors up down button level levels
bridges: bridge bridges river cross over span
fences: fence fences post posts gate yard
keys: key keys lock locks unlock door
""".strip()

# words with two unrelated common senses (or a common figurative sense next to the literal one)
TWO_SENSES = frozenset(
    """
    bank banks bark barking bat bats bill bills bolt bored bow box break bright buck bug bugs
    cabinet capital cell change charge charged check chip chips class clear coach coat cold company
    court cover crane crash crummy current cut date dates deck dough draft draw drawer drill drive
    dressing driver dry express fan fans fast field file fine fire fired flat fly flies foot fork
    frame framed free fresh game grave ground grounds guts hand hands handle hard head heart hit hot
    interest iron jam joint key keys kid kind last lead leaves left letter letters light line lines
    mean medium mine mint mold mouse nail nailed net note notes novel operation order organ
    outstanding palm pants park party patient patients pen pick picking pitch plain plane plate
    plates play point pointless pole pool pop present pressure problems punch quarter race racket
    rash record records refresh rest ring rock roll root roots round row ruler run saw scale scales
    school schools season seasoned second seconds shed shell shocked shock short sink site slip
    smart snap snapping sole space spare spirit spirits spring square stage stamp star state station
    steer step stick sticks stir stirring stuck suit swallow switch table tables tank tap tear
    temple tender tie tip tire tired toast top train trip trunk type wave waved well wind wing yard
    yeast batter beat beats beets board bowl buns butter cheesy corny crackers crumbs degrees
    dressed grate grounded hatch loaf loafing mussels nuts nutty peeling peeled pressed raisin sauce
    saucy sticky sweet toasted udder whey wheelie wired cheesed gritty salty crusty thyme sage
    minted appeal appealing core corn chili rapper chord tuna gummy hog hogs rise rising rolls crack
    cracked cracks spout spouting mug mugged bunch bunches split juice ears ear pet hoot croak
    shucks pork chop bear bears leap catch website crowned flushed pipes delivered deliver patch stew launch
    shortcuts focus dribbling dribble home base stealing traveling dunk wedge love strike lane
    breaking booking downhill showers flakes frosted frost bites spin full blast wrap virus windows
    contacts recharge batteries connection turned grip body smells toe skip living through pause
    chicken attractive bubbly sneeze fluke arms dock log petals bud power plant leaf oily
    sidetracked track higher exhausted hang ahead wraps zipped glove serve sleep wound spine leader
    shake filling bitter flip caps hanging stripes stink lit down pointing reflection coming cool
    sharp work feeling funny balance undercover dumped deflated strung place deal promoted chase
    slack drying brushing unhinged unlock post over ruins digging set shaky heavy facet long belt
    saucers rotten unwind true colors even improperly fiddle horn harping kick atmosphere
    washed stalked pits phase sweeping whirlwind dropping squash clam issues prime burst quarterback
    cream crop spots trim hops drumsticks stomach heated growth stable latitude canned drops culture
    spread eye eyes peel
    """.split()
)


def base_forms(word: str) -> tuple[str, ...]:
    """``word`` and the base forms a plain inflection could come from ("baked" -> "bake",
    "stopped" -> "stop", "ponies" -> "pony"); deliberately light, so "hope" is never "hop"."""
    w = word.lower()
    out = [w]
    def add(base: str) -> None:
        if len(base) >= 2:
            out.append(base)
            if len(base) >= 4 and base[-1] == base[-2] and base[-1] not in "sl":
                out.append(base[:-1])
    if w.endswith("ies"):
        add(w[:-3] + "y")
    if w.endswith("es"):
        add(w[:-2])
    if w.endswith("s") and not w.endswith("ss"):
        add(w[:-1])
    if w.endswith("ied"):
        add(w[:-3] + "y")
    if w.endswith("ed"):
        add(w[:-2])
        add(w[:-1])
    if w.endswith("ing"):
        add(w[:-3])
        add(w[:-3] + "e")
    return tuple(dict.fromkeys(out))


@functools.lru_cache(maxsize=1)
def _field_index() -> tuple[tuple[str, ...], dict[str, frozenset[int]]]:
    names: list[str] = []
    index: dict[str, set[int]] = {}
    for line in FIELDS.splitlines():
        if ":" not in line:
            continue
        name, members = line.split(":", 1)
        names.append(name.strip())
        for word in members.split():
            index.setdefault(word.lower(), set()).add(len(names) - 1)
    return tuple(names), {k: frozenset(v) for k, v in index.items()}


def fields_of(word: str) -> frozenset[int]:
    """The fields ``word`` (or its stem) belongs to."""
    _, index = _field_index()
    found: frozenset[int] = frozenset()
    for form in base_forms(word):
        found |= index.get(form, frozenset())
    return found


def field_name(field: int) -> str:
    return _field_index()[0][field]


def linked_to(word: str, subject: list[str]) -> tuple[str, str] | None:
    """(the subject word, the field name) when ``word`` shares a field with a subject word that is
    not the same word; None otherwise."""
    mine = fields_of(word)
    if not mine:
        return None
    forms = set(base_forms(word))
    for other in subject:
        if forms & set(base_forms(other)):
            continue
        shared = mine & fields_of(other)
        if shared:
            return other, field_name(min(shared))
    return None


def has_two_senses(word: str) -> bool:
    """``word`` (or the base form it inflects) is listed in ``TWO_SENSES`` or in the wordplay
    module's ``DOUBLE_MEANING``."""
    from sparring.evaluators.wordplay import DOUBLE_MEANING

    return any(form in TWO_SENSES or form in DOUBLE_MEANING for form in base_forms(word))
