/* dataset_test.c — unit tests for lib/dataset: the word lists that keep named objects out of
 * training (pimg train detect --exclude-objects), object stems and sorting a listing by path. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "testutil.h"

START_TEST(name_has_word_ignores_case_and_empty_words)
{
    const char *const w[] = {"frog", "", "sea_lion", "Strawberry"};
    ck_assert_int_eq(pimg_name_has_word("animals_amphibians__frog-1.png", w, 4), 1);
    ck_assert_int_eq(pimg_name_has_word("FROG.png", w, 4), 1);
    ck_assert_int_eq(pimg_name_has_word("food_fruit__strawberry.png", w, 4), 1);
    ck_assert_int_eq(pimg_name_has_word("sea_lion_2.png", w, 4), 1);
    /* A word must appear whole: "sea lion" with a blank or "lion" alone is not "sea_lion". */
    ck_assert_int_eq(pimg_name_has_word("sea-lion.png", w, 4), 0);
    ck_assert_int_eq(pimg_name_has_word("lion.png", w, 4), 0);
    ck_assert_int_eq(pimg_name_has_word("fro.png", w, 4), 0);
    /* The empty word matches nothing; no words excludes nothing. */
    ck_assert_int_eq(pimg_name_has_word("anything.png", w + 1, 1), 0);
    ck_assert_int_eq(pimg_name_has_word("frog.png", w, 0), 0);
}
END_TEST

START_TEST(word_list_read_skips_comments_and_blanks)
{
    char dir[256], path[512];
    pimg_test_mkdtemp(dir, sizeof dir, "words");
    snprintf(path, sizeof path, "%s/w.txt", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("# header comment\n\n  frog  \ncorn # trailing comment\r\n\t\n#thyme\nsea_lion", f);
    fclose(f);
    char **w = NULL;
    int n = -1;
    pimg_error err = {0};
    ck_assert_int_eq(pimg_word_list_read(path, &w, &n, &err), PIMG_OK);
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(w[0], "frog");
    ck_assert_str_eq(w[1], "corn");
    ck_assert_str_eq(w[2], "sea_lion");
    ck_assert_int_eq(pimg_name_has_word("Popcorn.png", (const char *const *)w, n), 1);
    ck_assert_int_eq(pimg_name_has_word("thyme.png", (const char *const *)w, n), 0);
    pimg_word_list_free(w, n);
    snprintf(path, sizeof path, "%s/missing.txt", dir);
    w = NULL;
    ck_assert_int_eq(pimg_word_list_read(path, &w, &n, &err), PIMG_ERR_IO);
    ck_assert_ptr_null(w);
    ck_assert(strstr(err.msg, "missing.txt") != NULL);
    pimg_test_rmtree(dir);
}
END_TEST

/* The committed list drops the public test set's objects (and the one duplicate stamp) but none
 * of the other cut-outs named here. */
START_TEST(committed_exclusion_list_matches_the_public_objects)
{
    char **w = NULL;
    int n = 0;
    pimg_error err = {0};
    ck_assert_msg(pimg_word_list_read("data/detect_exclude_objects.txt", &w, &n, &err) == PIMG_OK, "%s", err.msg);
    const char *const out[] = {"animals_amphibians__frog-1.png", "food_fruit__Strawberry2.png",
                               "vehicles_emergency__sedan_police_mirror.png", "donkey_eating.png",
                               "vehicles_ship__chineseJunk.png", "military_vehicles__bradley.png"};
    const char *const in[] = {"chinesejunk.png", "bradley_mirror.png", "animals_birds__blackbird.png",
                              "avocado.png", "infantry_stryker.png"};
    for (size_t i = 0; i < sizeof out / sizeof *out; i++)
        ck_assert_msg(pimg_name_has_word(out[i], (const char *const *)w, n), "%s not excluded", out[i]);
    for (size_t i = 0; i < sizeof in / sizeof *in; i++)
        ck_assert_msg(!pimg_name_has_word(in[i], (const char *const *)w, n), "%s excluded", in[i]);
    pimg_word_list_free(w, n);
}
END_TEST

START_TEST(object_stem_groups_variants_of_one_drawing)
{
    static const char *const cases[][2] = {
        {"/x/animals_mammals_cats__Lion-2.png", "lion"},
        {"animals_mammals_cats_cartoon__lion.png", "lion"},
        {"vehicles_emergency__sedan_police_mirror.png", "sedan_police"},
        {"objects/bradley_mirror.png", "bradley"},
        {"tree336.png", "tree"},
        {"a__fireworks2_mirror.PNG", "fireworks"},
        /* never stripped to nothing; a name without extension or prefix is kept as it is */
        {"2.png", "2"},
        {"mirror.png", "mirror"},
        {"avocado", "avocado"},
        /* different objects keep different stems */
        {"lionfish.png", "lionfish"},
    };
    char b[128];
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        pimg_object_stem(cases[k][0], b, sizeof b);
        ck_assert_str_eq(b, cases[k][1]);
    }
    /* Truncated to the buffer. */
    pimg_object_stem("abcdefgh.png", b, 5);
    ck_assert_str_eq(b, "abcd");
}
END_TEST

START_TEST(photos_sort_orders_a_range_by_path)
{
    pimg_photo_list l = {0};
    const char *names[] = {"z/keep", "b/x.png", "a/y.png", "b/a.png", "0/keep"};
    l.v = calloc(5, sizeof *l.v);
    ck_assert_ptr_nonnull(l.v);
    l.n = l.cap = 5;
    for (int i = 0; i < 5; i++)
        snprintf(l.v[i].path, sizeof l.v[i].path, "%s", names[i]);
    pimg_photos_sort(&l, 1, 4);
    ck_assert_str_eq(l.v[0].path, "z/keep");
    ck_assert_str_eq(l.v[1].path, "a/y.png");
    ck_assert_str_eq(l.v[2].path, "b/a.png");
    ck_assert_str_eq(l.v[3].path, "b/x.png");
    ck_assert_str_eq(l.v[4].path, "0/keep");
    pimg_photo_list_free(&l);
    ck_assert_ptr_null(l.v);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dataset");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, name_has_word_ignores_case_and_empty_words);
    tcase_add_test(tc, word_list_read_skips_comments_and_blanks);
    tcase_add_test(tc, committed_exclusion_list_matches_the_public_objects);
    tcase_add_test(tc, object_stem_groups_variants_of_one_drawing);
    tcase_add_test(tc, photos_sort_orders_a_range_by_path);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 0);
}
